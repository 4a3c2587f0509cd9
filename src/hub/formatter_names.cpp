#include "ringcast/hub/formatter_names.h"

#include <unordered_map>

namespace ringcast::hub {

namespace {

// FNV-1a: the same name gives the same id on every node.
uint32_t name_id(std::string_view name) {
  uint32_t h = 2166136261u;
  for (char c : name) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h ? h : 1;
}

template <typename F>
struct Names {
  // Written only at start-up (profile constructors), before any worker reads: no lock per event.
  std::unordered_map<F, uint32_t> ids;
  std::unordered_map<uint32_t, F> fns;

  void add(F f, std::string_view name) {
    uint32_t id = name_id(name);
    ids[f] = id;
    fns[id] = f;
  }
  uint32_t id(F f) {
    if (!f) return 0;
    auto it = ids.find(f);
    return it == ids.end() ? 0 : it->second;
  }
  F fn(uint32_t id) {
    auto it = fns.find(id);
    return it == fns.end() ? nullptr : it->second;
  }
};

template <typename F>
Names<F>& names() {
  static Names<F> n;
  return n;
}

}  // namespace

void name_formatter(EventFormatter f, std::string_view name) {
  names<EventFormatter>().add(f, name);
}
void name_formatter(PresenceFormatter f, std::string_view name) {
  names<PresenceFormatter>().add(f, name);
}
void name_formatter(StateFormatter f, std::string_view name) {
  names<StateFormatter>().add(f, name);
}
uint32_t formatter_id(EventFormatter f) {
  return names<EventFormatter>().id(f);
}
uint32_t formatter_id(PresenceFormatter f) {
  return names<PresenceFormatter>().id(f);
}
uint32_t formatter_id(StateFormatter f) {
  return names<StateFormatter>().id(f);
}
EventFormatter event_formatter(uint32_t id) {
  return names<EventFormatter>().fn(id);
}
PresenceFormatter presence_formatter(uint32_t id) {
  return names<PresenceFormatter>().fn(id);
}
StateFormatter state_formatter(uint32_t id) {
  return names<StateFormatter>().fn(id);
}

}  // namespace ringcast::hub
