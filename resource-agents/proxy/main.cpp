// ocf:hamail:proxy — see docs/resource-agents.md.

#include "proxy_agent.hpp"

int main(int argc, char** argv) {
  const auto env = hamail::ocf::environment::from_process();
  hamail::ocf::configure_logging(hamail::ocf::proxy_agent::spec(), env);
  return hamail::ocf::run(hamail::ocf::proxy_agent::spec(), hamail::ocf::proxy_agent::handlers(),
                          argc, argv, env);
}
