#pragma once

// ocf:hamail:proxy — runs one hamail-proxy instance (a frontend) under Pacemaker, as a
// clone: no store, no data directory, no floating address; one instance on every node.

#include <map>
#include <string>

#include "hamail/ocf/agent.hpp"

namespace hamail::ocf::proxy_agent {

/// The agent's parameters and actions (the source of its meta-data).
const agent_spec& spec();

/// start, stop, monitor, validate-all, reload.
std::map<std::string, handler> handlers();

}  // namespace hamail::ocf::proxy_agent
