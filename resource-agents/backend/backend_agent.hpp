#pragma once

// ocf:hamail:backend — runs one hamail-backend instance (one store) under Pacemaker.

#include <map>
#include <string>

#include "hamail/ocf/agent.hpp"

namespace hamail::ocf::backend_agent {

/// The agent's parameters and actions (the source of its meta-data).
const agent_spec& spec();

/// start, stop, monitor, validate-all, reload.
std::map<std::string, handler> handlers();

}  // namespace hamail::ocf::backend_agent
