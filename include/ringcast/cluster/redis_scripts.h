// The Lua scripts the cluster runs in Redis (each atomic there), and their SHA-1 for EVALSHA.
// Key layout, per room R under the prefix P (default "rc:"), all sharing the hash tag {R}:
//   P{R}        the room's sharded pub/sub channel
//   P{R}:meta   hash: ev (the room's event counter), seq (message sequence), order (state keys)
//   P{R}:hist   stream: the last N messages, entry id "<seq>-1", field m = the event as published
//   P{R}:pres   hash: member (node instance + session, 32 hex digits) -> presence record
//   P{R}:state  hash: key -> value;  P{R}:order  hash: key -> insertion order
//   Pnodes      sorted set: node instance -> last heartbeat (Redis time, ms)
//   Pinst:<instance>:rooms  set: rooms that node's members joined (for cleanup when it dies)
//   Pinst:{<instance>}      channel: direct sends to that node's sessions
//   Pdir:{bridge}[:ids|:free|:next|:owner]  the bridge profile's client ids and bridge
//   Pj:{<journal>}[:ver|...]  a profile's journal (hub::ClusterJournal): its channel, record
//                             counter and whatever keys its script keeps under that name
//   Pjdead      sorted set: nodes that died in the last minute (journals clean up after them)
#pragma once

#include <string>

namespace ringcast::cluster {

extern const char* const kHeartbeatScript;
extern const char* const kEventScript;
extern const char* const kSnapshotScript;
extern const char* const kDirectoryScript;

// A journal's whole script: the profile's body in the bus's wrapper (see the .cpp).
std::string journal_script(const char* body);

// Lower-case hex SHA-1 of a script, as Redis names it.
std::string script_sha1(const char* script);

}  // namespace ringcast::cluster
