// Event formatters by name, for the cluster: an event published on one node is formatted on every
// other node by the formatter registered under the same name there (function addresses differ
// between processes). Profiles name their formatters once at construction, before the workers
// start; lookups after that are read-only.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringcast/hub/envelope.h"
#include "ringcast/hub/hub.h"

namespace ringcast::hub {

void name_formatter(EventFormatter f, std::string_view name);
void name_formatter(PresenceFormatter f, std::string_view name);
void name_formatter(StateFormatter f, std::string_view name);
// 0 for an unnamed formatter (or none): a cluster node then cannot format it elsewhere.
uint32_t formatter_id(EventFormatter f);
uint32_t formatter_id(PresenceFormatter f);
uint32_t formatter_id(StateFormatter f);
EventFormatter event_formatter(uint32_t id);
PresenceFormatter presence_formatter(uint32_t id);
StateFormatter state_formatter(uint32_t id);

}  // namespace ringcast::hub
