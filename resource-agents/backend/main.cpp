// ocf:hamail:backend — see docs/resource-agents.md.

#include "backend_agent.hpp"

int main(int argc, char** argv) {
  const auto env = hamail::ocf::environment::from_process();
  hamail::ocf::configure_logging(hamail::ocf::backend_agent::spec(), env);
  return hamail::ocf::run(hamail::ocf::backend_agent::spec(),
                          hamail::ocf::backend_agent::handlers(), argc, argv, env);
}
