// The hub's retained state: set_state on the writer's core, and on the room's home core the
// ordered apply, the exact per-room limits and the durable write (split from hub.cpp).
#include <cstring>

#include "ringcast/engine/log.h"
#include "ringcast/hub/hub.h"

namespace ringcast::hub {

// Retained-state writes travel as one envelope: key and value packed in a pooled frame
// ([u32 key length][key][value]), so a write allocates nothing once warm. A value over the size
// limit is judged here (it depends on nothing else) but refused from the home core, in order
// with the writer's earlier writes; it travels without its value.
void Hub::set_state(websocket::Session& s, SharedRoom* room, std::string_view key,
                    std::optional<std::string_view> value, StateFormatter formatter,
                    const StateOptions& opts) {
  const bool too_large = value && opts.max_value_bytes && value->size() > opts.max_value_bytes;
  size_t vlen = value && !too_large ? value->size() : 0;
  engine::SharedFrame* data = engine::SharedFrame::allocate(4 + key.size() + vlen);
  uint32_t klen = static_cast<uint32_t>(key.size());
  std::memcpy(data->data(), &klen, 4);
  if (!key.empty()) std::memcpy(data->data() + 4, key.data(), key.size());
  if (vlen) std::memcpy(data->data() + 4 + key.size(), value->data(), vlen);
  data->set_size(4 + key.size() + vlen);
  Envelope e;
  e.kind = Envelope::Kind::kState;
  e.flags = static_cast<uint8_t>(
      (opts.echo ? 0 : Envelope::kNoEcho) | (value ? 0 : Envelope::kDelete) |
      (opts.write_behind ? Envelope::kWriteBehind : 0) | (opts.event ? Envelope::kEvent : 0) |
      (too_large ? Envelope::kTooLarge : 0));
  e.max_keys = opts.max_keys;
  e.key_prefix = static_cast<uint16_t>(std::min<size_t>(opts.key_prefix, key.size()));
  room->add_ref();
  e.room = room;
  e.frame = data;
  e.session = s.id();
  if (opts.event) {
    opts.event->add_ref();
    e.event = opts.event;
  } else {
    e.state_formatter = formatter;
  }
  // A refused write never gets reply_ok: a too-large one carries only its refusal.
  engine::SharedFrame* refused = too_large ? opts.reply_too_large : opts.reply_refused;
  engine::SharedFrame* ok = too_large ? nullptr : opts.reply_ok;
  engine::SharedFrame* fail = too_large ? nullptr : opts.reply_fail;
  // Write-behind needs no commit, but an answer still holds the writer's later messages.
  const bool answered = refused || ok || fail;
  const void* hold_key = opts.write_behind ? static_cast<const void*>(&room->state()) : room;
  if ((answered || !opts.write_behind) && hold_for_write(s, room, data->size(), answered, hold_key))
    e.flags |= Envelope::kHeld;
  if (refused) refused->add_ref();
  if (ok) ok->add_ref();
  if (fail) fail->add_ref();
  e.reply_refused = refused;
  e.reply_ok = ok;
  e.reply_fail = fail;
  send(room->home(), e, &s);
}

void Hub::home_state(Envelope& e) {
  if (system_.cluster()) return cluster_state(e);
  SharedRoom* room = e.room;
  const uint8_t* p = e.frame->data();
  uint32_t klen;
  std::memcpy(&klen, p, 4);
  std::string_view key(reinterpret_cast<const char*>(p) + 4, klen);
  const bool del = e.flags & Envelope::kDelete;
  const bool echo = !(e.flags & Envelope::kNoEcho);
  const bool held = e.flags & Envelope::kHeld;
  engine::SharedFrame* event = (e.flags & Envelope::kEvent) ? e.event : nullptr;
  StateFormatter formatter = (e.flags & Envelope::kEvent) ? nullptr : e.state_formatter;
  std::optional<std::string_view> value;
  if (!del) {
    value =
        std::string_view(reinterpret_cast<const char*>(p) + 4 + klen, e.frame->size() - 4 - klen);
  }
  RetainedState& state = room->state();
  RoomStore& store = system_.store();
  const bool persistent = store.persistent(*room);
  const bool deferred = persistent && store.acknowledge_after_commit() &&
                        !(e.flags & Envelope::kWriteBehind);  // applied after its commit
  // Limits: judged here, where the room's writes are ordered, so the count is exact however many
  // cores write at once. A refused write changes nothing and reaches nobody but its writer.
  const uint32_t max_keys = e.max_keys;
  const std::string_view prefix = key.substr(0, e.key_prefix);
  if ((e.flags & Envelope::kTooLarge) ||
      (!del && !state.admits(key, prefix, max_keys, !deferred))) {
    if (e.reply_refused) send_to(e.session, e.reply_refused);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  // Deleting what is not there is already done, unless an earlier write of this room is still
  // waiting for its commit (it may be the one that adds the key): then the delete queues behind
  // it and looks again when applied.
  if (del && room->state_pending == 0 && !state.contains(key)) {
    if (e.reply_ok) send_to(e.session, e.reply_ok);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  const uint64_t order = state.reserve_order();
  if (!persistent) {
    apply_state(room, key, value, order, event, formatter, e.session, echo, e.reply_ok);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  if (!deferred) {
    // Deliver now, write behind. A later write of the same key cannot overtake this one: a
    // room's writes reach the store in the order they were made.
    store.put_state(*room, key, value, order, [](bool) {});
    apply_state(room, key, value, order, event, formatter, e.session, echo, e.reply_ok);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  // Acknowledged means kept: the change (and the writer's reply) is seen only after its commit.
  // Until then the write counts as pending, so later writes are judged as if it were applied.
  ++room->state_pending;
  state.pend(key, !del);
  room->add_ref();
  RoomRef ref(&system_.rooms(), room);
  engine::FrameRef data(e.frame), ev(event), ok(e.reply_ok), fail(e.reply_fail),
      refused(e.reply_refused);
  e.frame = e.reply_ok = e.reply_fail = e.reply_refused = nullptr;  // now owned by the callback
  if (event) e.event = nullptr;
  uint64_t sender = e.session;
  store.put_state(
      *room, key, value, order,
      [this, ref, data, ev, ok, fail, refused, formatter, sender, echo, del, order, held, max_keys,
       key_prefix = e.key_prefix](bool stored) {
        SharedRoom* r = ref.get();
        --r->state_pending;
        const uint8_t* q = data->data();
        uint32_t kl;
        std::memcpy(&kl, q, 4);
        std::string_view k(reinterpret_cast<const char*>(q) + 4, kl);
        RetainedState& st = r->state();
        auto done = [&] {
          st.settle(k);
          if (held) release_hold(sender, data->size());
        };
        if (!stored) {
          if (fail) send_to(sender, fail.get());
          return done();
        }
        // Admitted counting the writes before it as applied; if the store refused one of those
        // (a delete that would have made room), this one no longer fits: take it back out of the
        // store rather than pass the limit.
        if (!del && !st.fits(k, k.substr(0, key_prefix), max_keys)) {
          RC_WARN(
              "room %s: a state write passed the key limit after an earlier write failed; "
              "taken back",
              r->name().c_str());
          system_.store().put_state(*r, k, std::nullopt, st.reserve_order(), [](bool) {});
          if (refused) send_to(sender, refused.get());
          return done();
        }
        std::optional<std::string_view> v;
        if (!del) {
          v = std::string_view(reinterpret_cast<const char*>(q) + 4 + kl, data->size() - 4 - kl);
        }
        apply_state(r, k, v, order, ev.get(), formatter, sender, echo, ok.get());
        done();
      });
}

void Hub::apply_state(SharedRoom* room, std::string_view key, std::optional<std::string_view> value,
                      uint64_t order, engine::SharedFrame* event, StateFormatter formatter,
                      uint64_t sender, bool echo, engine::SharedFrame* reply_ok) {
  if (value) {
    room->state().set(key, *value, order);
    if (!room->pinned) pin(room);  // retained state keeps the room alive
  } else if (!room->state().erase(key)) {
    if (reply_ok) send_to(sender, reply_ok);  // nothing to delete: done, nothing to announce
    return;
  }
  if (reply_ok) send_to(sender, reply_ok);
  engine::SharedFrame* f = nullptr;
  if (event) {
    event->add_ref();
    f = event;
  } else if (formatter) {
    f = formatter(*room, key, value ? *value : std::string_view(), sender);
  }
  if (f) {
    fanout_home(room, f, echo ? 0 : sender, false);
    f->release();
  }
  if (!value) maybe_unpin(room);  // the caller holds a reference: the room outlives this
}

}  // namespace ringcast::hub
