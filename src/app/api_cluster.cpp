// The server API across a cluster: GET /api/rooms and POST /api/disconnect ask every other node
// (hub::ClusterBus::query) and put the answers together with this node's own. A node that does
// not answer within ClusterBus::kQueryTimeoutMs is counted as missing, never waited for longer.
#include <charconv>
#include <cstring>

#include "ringcast/app/api_service.h"

namespace ringcast::app {

namespace {

// A room's row in a node's answer: "<name length>:<name><members>,<seq>,<history>,<state keys>;"
void put_row(std::string& out, const std::string& name, uint64_t members, uint64_t seq,
             uint64_t history, uint64_t state_keys) {
  out += std::to_string(name.size());
  out += ':';
  out += name;
  for (uint64_t v : {members, seq, history, state_keys}) {
    out += std::to_string(v);
    out += ',';
  }
  out.back() = ';';
}

bool take_u64(std::string_view& in, char end, uint64_t& v) {
  auto r = std::from_chars(in.data(), in.data() + in.size(), v);
  if (r.ec != std::errc() || r.ptr == in.data() + in.size() || *r.ptr != end) return false;
  in.remove_prefix(static_cast<size_t>(r.ptr - in.data()) + 1);
  return true;
}

// "<node id>\n" then what the query answers.
std::pair<std::string_view, std::string_view> split_answer(std::string_view a) {
  size_t nl = a.find('\n');
  if (nl == std::string_view::npos) return {a, {}};
  return {a.substr(0, nl), a.substr(nl + 1)};
}

}  // namespace

void ApiService::ask(int core, std::string query, Answers done) {
  hub::ClusterBus* bus = hubs_.cluster();
  if (!bus) return done({}, 0);
  uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  waiting_[static_cast<size_t>(core)].emplace(ticket, std::move(done));
  bus->query(core, ticket, query);
}

void ApiService::cluster_answers(hub::Hub& hub, uint64_t ticket,
                                 const std::vector<std::string_view>& answers, size_t asked) {
  auto& mine = waiting_[static_cast<size_t>(hub.core())];
  auto it = mine.find(ticket);
  if (it == mine.end()) return;
  Answers done = std::move(it->second);
  mine.erase(it);
  done(answers, asked);
}

// ---- asking
// ---------------------------------------------------------------------------------------

void ApiService::disconnect_everywhere(int origin, DisconnectTarget t,
                                       std::function<void(const Tally&)> done) {
  auto target = std::make_shared<const DisconnectTarget>(std::move(t));
  disconnect_here(origin, target, [this, origin, target, done](size_t here) {
    Tally tally;
    tally.closed = here;
    tally.nodes.push_back(node_id_);
    hub::ClusterBus* bus = hubs_.cluster();
    // A session of this node (not a remote-looking id) is closed here or nowhere.
    if (!bus || (target->user.empty() && !hub::is_remote_session(target->session)))
      return done(tally);
    tally.degraded = !bus->connected();
    // 'd' <session, 8 bytes><code, 2 bytes><reason length, 4 bytes><reason><user>
    std::string q = "d";
    q.append(reinterpret_cast<const char*>(&target->session), 8);
    q.append(reinterpret_cast<const char*>(&target->code), 2);
    auto len = static_cast<uint32_t>(target->reason.size());
    q.append(reinterpret_cast<const char*>(&len), 4);
    q += target->reason;
    q += target->user;
    ask(origin, std::move(q),
        [tally, done](const std::vector<std::string_view>& answers, size_t asked) mutable {
          for (std::string_view a : answers) {
            auto [node, body] = split_answer(a);
            uint64_t n = 0;
            std::from_chars(body.data(), body.data() + body.size(), n);
            tally.closed += n;
            tally.nodes.emplace_back(node);
          }
          tally.missing = asked > answers.size() ? asked - answers.size() : 0;
          done(tally);
        });
  });
}

void ApiService::rooms_everywhere(int origin,
                                  std::function<void(const RoomTable&, const Tally&)> done) {
  rooms_here(origin, [this, origin, done](RoomTable& here) {
    Tally tally;
    tally.nodes.push_back(node_id_);
    hub::ClusterBus* bus = hubs_.cluster();
    if (!bus) return done(here, tally);
    tally.degraded = !bus->connected();
    auto table = std::make_shared<RoomTable>(std::move(here));
    ask(origin, "r",
        [this, table, tally, done](const std::vector<std::string_view>& answers,
                                   size_t asked) mutable {
          const int cores = hubs_.cores();
          for (std::string_view a : answers) {
            auto [node, rows] = split_answer(a);
            tally.nodes.emplace_back(node);
            while (!rows.empty()) {
              uint64_t len = 0, members = 0, seq = 0, history = 0, keys = 0;
              if (!take_u64(rows, ':', len) || rows.size() < len) break;
              std::string name(rows.substr(0, len));
              rows.remove_prefix(len);
              if (!take_u64(rows, ',', members) || !take_u64(rows, ',', seq) ||
                  !take_u64(rows, ',', history) || !take_u64(rows, ';', keys))
                break;
              RoomInfo& info = (*table)[name];
              if (info.members.empty()) info.members.assign(static_cast<size_t>(cores), 0);
              info.elsewhere += members;
              info.per_node[std::string(node)] += members;
              // Every node that mirrors a sequenced room has the same numbers; one that does not
              // mirror it says 0.
              info.seq = std::max(info.seq, seq);
              info.history = std::max<size_t>(info.history, history);
              info.state_keys = std::max<size_t>(info.state_keys, keys);
            }
          }
          tally.missing = asked > answers.size() ? asked - answers.size() : 0;
          done(*table, tally);
        });
  });
}

// ---- answering
// ------------------------------------------------------------------------------------

void ApiService::cluster_query(hub::Hub& hub, std::string_view from, uint64_t ticket,
                               std::string_view query) {
  if (query.empty()) return;
  const int core = hub.core();
  std::string who(from);
  auto answer = [this, core, who, ticket](std::string body) {
    if (hub::ClusterBus* bus = hubs_.cluster())
      bus->query_answer(core, who, ticket, node_id_ + "\n" + body);
  };
  if (query[0] == 'r') {
    rooms_here(core, [answer](RoomTable& rooms) {
      std::string out;
      for (const auto& [name, info] : rooms) {
        uint64_t members = 0;
        for (uint32_t m : info.members) members += m;
        put_row(out, name, members, info.seq, info.history, info.state_keys);
      }
      answer(std::move(out));
    });
    return;
  }
  if (query[0] == 'd' && query.size() >= 1 + 8 + 2 + 4) {
    auto t = std::make_shared<DisconnectTarget>();
    std::memcpy(&t->session, query.data() + 1, 8);
    std::memcpy(&t->code, query.data() + 9, 2);
    uint32_t len = 0;
    std::memcpy(&len, query.data() + 11, 4);
    std::string_view rest = query.substr(15);
    if (rest.size() < len) return;
    t->reason = rest.substr(0, len);
    t->user = rest.substr(len);
    // Only sessions of this node as the others know them: a local-looking id is the asker's own.
    if (t->user.empty() && !hub::is_remote_session(t->session)) return answer("0");
    disconnect_here(core, t, [answer](size_t n) { answer(std::to_string(n)); });
  }
}

}  // namespace ringcast::app
