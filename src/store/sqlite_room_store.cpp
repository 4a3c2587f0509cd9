#include "ringcast/store/sqlite_room_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "ringcast/engine/log.h"

namespace ringcast::store {

namespace {
constexpr size_t kRingSize = 65536;

bool matches(const std::string& pattern, std::string_view name) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') {
    return name.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1));
  }
  return pattern == name;
}
}  // namespace

// One write, from a home core to the store thread and back.
struct SqliteRoomStore::Op {
  enum class Kind { kAppend, kState } kind;
  int core;
  std::string room;
  size_t history;  // the room's history bound, for trimming
  hub::HistoryRecord rec;
  std::string key;
  std::optional<std::string> value;
  uint64_t order;  // kState: the position of a new key
  Done done;
  bool ok = false;
};

struct SqliteRoomStore::PerCore {
  engine::SpscRing<Op*> to_store{kRingSize};    // the core produces, the store consumes
  engine::SpscRing<Op*> from_store{kRingSize};  // the store produces, the core consumes
  std::deque<Op*> backlog;                      // core only: waiting for room in to_store
  bool pushed = false;                          // core only: wake the store this pass
};

SqliteRoomStore::SqliteRoomStore(StoreOptions opts, int cores)
    : opts_(std::move(opts)), cores_(cores) {
  for (int i = 0; i < cores; ++i) per_core_.push_back(std::make_unique<PerCore>());
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

SqliteRoomStore::~SqliteRoomStore() {
  stop();
  for (sqlite3_stmt* st :
       {insert_message_, trim_messages_, upsert_room_, upsert_state_, delete_state_})
    sqlite3_finalize(st);
  if (db_) sqlite3_close(db_);
  if (event_fd_ >= 0) ::close(event_fd_);
  for (auto& pc : per_core_) {
    pc->to_store.drain(SIZE_MAX, [](Op* op) { delete op; });
    pc->from_store.drain(SIZE_MAX, [](Op* op) { delete op; });
    for (Op* op : pc->backlog) delete op;
  }
}

std::string SqliteRoomStore::path() const {
  return opts_.data_dir + "/ringcast.db";
}

void SqliteRoomStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw StoreError(path() + ": " + msg + " (while running: " + sql + ")");
  }
}

void SqliteRoomStore::open() {
  if (::mkdir(opts_.data_dir.c_str(), 0750) != 0 && errno != EEXIST) {
    throw StoreError("cannot create data directory " + opts_.data_dir + ": " +
                     std::strerror(errno));
  }
  int rc =
      sqlite3_open_v2(path().c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    throw StoreError("cannot open store " + path() + ": " +
                     (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  sqlite3_busy_timeout(db_, 5000);
  // A damaged file must stop start-up, never be replaced by an empty store.
  sqlite3_stmt* check = nullptr;
  rc = sqlite3_prepare_v2(db_, "PRAGMA quick_check", -1, &check, nullptr);
  if (rc != SQLITE_OK) {
    throw StoreError("store " + path() + " is unreadable: " + sqlite3_errmsg(db_) +
                     " (move it away to start empty, or restore a backup)");
  }
  rc = sqlite3_step(check);
  std::string verdict = rc == SQLITE_ROW
                            ? reinterpret_cast<const char*>(sqlite3_column_text(check, 0))
                            : sqlite3_errmsg(db_);
  sqlite3_finalize(check);
  if (verdict != "ok") {
    throw StoreError("store " + path() + " is corrupt: " + verdict +
                     " (move it away to start empty, or restore a backup)");
  }
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");  // a commit is on disk before anyone hears of it
  // Checkpoints copy the WAL into the database and sync both: the store thread runs them when it
  // is idle instead of inside some commit that members are waiting for.
  exec("PRAGMA wal_autocheckpoint=0");
  exec(
      "CREATE TABLE IF NOT EXISTS rooms(room TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS messages(room TEXT NOT NULL, seq INTEGER NOT NULL,"
      " ts INTEGER NOT NULL, sender INTEGER NOT NULL, user TEXT NOT NULL, payload BLOB NOT NULL,"
      " event BLOB NOT NULL, PRIMARY KEY(room, seq)) WITHOUT ROWID;"
      "CREATE TABLE IF NOT EXISTS state(room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
      " ord INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(room, key)) WITHOUT ROWID;");
  // Stores written before state kept its insertion order: add the column (their keys restore in
  // key order, then everything new comes after them).
  {
    sqlite3_stmt* cols = nullptr;
    bool has_ord = false;
    if (sqlite3_prepare_v2(db_, "PRAGMA table_info(state)", -1, &cols, nullptr) == SQLITE_OK) {
      while (sqlite3_step(cols) == SQLITE_ROW) {
        const unsigned char* name = sqlite3_column_text(cols, 1);
        if (name && std::strcmp(reinterpret_cast<const char*>(name), "ord") == 0) has_ord = true;
      }
    }
    sqlite3_finalize(cols);
    if (!has_ord) exec("ALTER TABLE state ADD COLUMN ord INTEGER NOT NULL DEFAULT 0");
  }
  auto prepare = [this](const char* sql, sqlite3_stmt** st) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, st, nullptr) != SQLITE_OK) {
      throw StoreError(path() + ": " + sqlite3_errmsg(db_));
    }
  };
  prepare(
      "INSERT OR REPLACE INTO messages(room, seq, ts, sender, user, payload, event)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
      &insert_message_);
  prepare("DELETE FROM messages WHERE room = ?1 AND seq <= ?2", &trim_messages_);
  prepare(
      "INSERT INTO rooms(room, seq) VALUES(?1, ?2)"
      " ON CONFLICT(room) DO UPDATE SET seq = max(seq, excluded.seq)",
      &upsert_room_);
  // A key that exists keeps its position (ord); a new one takes the order the hub reserved.
  prepare(
      "INSERT INTO state(room, key, value, ord) VALUES(?1, ?2, ?3, ?4)"
      " ON CONFLICT(room, key) DO UPDATE SET value = excluded.value",
      &upsert_state_);
  prepare("DELETE FROM state WHERE room = ?1 AND key = ?2", &delete_state_);
}

void SqliteRoomStore::restore(hub::RoomRegistry& rooms) {
  std::vector<std::pair<std::string, uint64_t>> names;
  {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_,
                       "SELECT room, max(seq) FROM (SELECT room, seq FROM rooms UNION ALL"
                       " SELECT room, 0 FROM state) GROUP BY room",
                       -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                         static_cast<uint64_t>(sqlite3_column_int64(st, 1)));
    }
    sqlite3_finalize(st);
  }
  sqlite3_stmt* msgs = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT seq, ts, sender, user, payload, event FROM messages WHERE room = ?1"
                     " ORDER BY seq DESC LIMIT ?2",
                     -1, &msgs, nullptr);
  sqlite3_stmt* state = nullptr;
  sqlite3_prepare_v2(db_, "SELECT key, value, ord FROM state WHERE room = ?1 ORDER BY ord, key", -1,
                     &state, nullptr);
  size_t messages = 0;
  for (const auto& [name, seq] : names) {
    // Not released: this reference is the room's pin (see Hub::pin). A persistent room with
    // content stays in memory for the life of the process, counted against [hub] max_rooms.
    hub::SharedRoom* room = rooms.acquire(name, false);
    if (seq > room->seq) room->seq = seq;
    sqlite3_bind_text(msgs, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
    sqlite3_bind_int64(msgs, 2, static_cast<int64_t>(room->history().capacity()));
    std::vector<hub::HistoryRecord> recs;
    while (sqlite3_step(msgs) == SQLITE_ROW) {
      hub::HistoryRecord rec;
      rec.seq = static_cast<uint64_t>(sqlite3_column_int64(msgs, 0));
      rec.ts_ms = sqlite3_column_int64(msgs, 1);
      rec.sender = static_cast<uint64_t>(sqlite3_column_int64(msgs, 2));
      rec.user = reinterpret_cast<const char*>(sqlite3_column_text(msgs, 3));
      auto blob = [&](int col) {
        int n = sqlite3_column_bytes(msgs, col);
        engine::SharedFrame* f = engine::SharedFrame::allocate(static_cast<size_t>(n));
        if (n) std::memcpy(f->data(), sqlite3_column_blob(msgs, col), static_cast<size_t>(n));
        f->set_size(static_cast<size_t>(n));
        return engine::FrameRef(f);
      };
      rec.payload = blob(4);
      rec.payload_offset = 0;
      rec.event = blob(5);
      recs.push_back(std::move(rec));
    }
    sqlite3_reset(msgs);
    messages += recs.size();
    for (auto it = recs.rbegin(); it != recs.rend(); ++it) room->history().push(std::move(*it));
    sqlite3_bind_text(state, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
    uint64_t order = 0;
    while (sqlite3_step(state) == SQLITE_ROW) {
      // Stored order numbers where they are distinct (rows of older stores all have 0), so what
      // the hub reserves next lands after every stored row.
      order = std::max(order + 1, static_cast<uint64_t>(sqlite3_column_int64(state, 2)));
      // Lengths from SQLite: a key may contain NUL bytes.
      auto text = [&](int col) {
        const char* p = reinterpret_cast<const char*>(sqlite3_column_text(state, col));
        return std::string_view(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(state, col)));
      };
      room->state().set(text(0), text(1), order);
    }
    sqlite3_reset(state);
    room->pinned = true;
  }
  sqlite3_finalize(msgs);
  sqlite3_finalize(state);
  RC_INFO("store %s: restored %zu rooms, %zu messages", path().c_str(), names.size(), messages);
}

void SqliteRoomStore::start(std::function<void(int)> wake) {
  wake_ = std::move(wake);
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void SqliteRoomStore::stop() {
  if (!running_.exchange(false)) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(event_fd_, &one, sizeof one);
  (void)ignored;
  thread_.join();
}

bool SqliteRoomStore::persistent(const hub::SharedRoom& room) const {
  for (const auto& p : opts_.persistent_rooms)
    if (matches(p, room.name())) return true;
  return false;
}

void SqliteRoomStore::append(const hub::SharedRoom& room, const hub::HistoryRecord& rec,
                             Done done) {
  auto* op =
      new Op{Op::Kind::kAppend, room.home(), room.name(), room.history().capacity(), {}, {}, {}, 0,
             std::move(done)};
  op->rec.seq = rec.seq;
  op->rec.ts_ms = rec.ts_ms;
  op->rec.sender = rec.sender;
  op->rec.user = rec.user;
  op->rec.payload = rec.payload;  // references, not copies: the frames are immutable
  op->rec.payload_offset = rec.payload_offset;
  op->rec.event = rec.event;
  submit(room.home(), op);
}

void SqliteRoomStore::put_state(const hub::SharedRoom& room, std::string_view key,
                                std::optional<std::string_view> value, uint64_t order, Done done) {
  auto* op = new Op{Op::Kind::kState,
                    room.home(),
                    room.name(),
                    0,
                    {},
                    std::string(key),
                    value ? std::optional<std::string>(*value) : std::nullopt,
                    order,
                    std::move(done)};
  submit(room.home(), op);
}

void SqliteRoomStore::submit(int core, Op* op) {
  PerCore& pc = *per_core_[core];
  if (!pc.backlog.empty() || !pc.to_store.push(op)) pc.backlog.push_back(op);
  pc.pushed = true;
}

bool SqliteRoomStore::poll(int core) {
  PerCore& pc = *per_core_[core];
  while (!pc.backlog.empty() && pc.to_store.push(pc.backlog.front())) pc.backlog.pop_front();
  if (pc.pushed) {
    // Once per pass, however many writes this core queued.
    pc.pushed = !pc.backlog.empty();
    uint64_t one = 1;
    ssize_t ignored = ::write(event_fd_, &one, sizeof one);
    (void)ignored;
  }
  size_t n = pc.from_store.drain(SIZE_MAX, [](Op* op) {
    op->done(op->ok);
    delete op;
  });
  return n > 0;
}

bool SqliteRoomStore::has_completions(int core) const {
  const PerCore& pc = *per_core_[core];
  return !pc.from_store.empty() || !pc.backlog.empty();
}

void SqliteRoomStore::run() {
  std::vector<Op*> group;
  std::vector<char> woken(static_cast<size_t>(cores_), 0);
  uint64_t since_checkpoint = 0;
  while (true) {
    pollfd pfd{event_fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, 100);
    if (ready == 0 && since_checkpoint > 0) {
      // Idle for 100 ms: fold the WAL back into the database.
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      since_checkpoint = 0;
    }
    uint64_t v;
    ssize_t ignored = ::read(event_fd_, &v, sizeof v);
    (void)ignored;
    bool more = true;
    while (more) {
      // Everything queued by now is one group; writes that arrive during the commit form the next.
      group.clear();
      for (auto& pc : per_core_) {
        pc->to_store.drain(opts_.max_group - std::min(group.size(), opts_.max_group),
                           [&](Op* op) { group.push_back(op); });
      }
      more = group.size() >= opts_.max_group;
      if (group.empty()) break;
      auto t0 = std::chrono::steady_clock::now();
      bool ok = commit(group);
      auto took = std::chrono::steady_clock::now() - t0;
      commit_latency_ns_.observe(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()));
      commit_batch_size_.observe(group.size());
      if (took > std::chrono::milliseconds(50)) {
        RC_WARN("store: a commit of %zu writes took %lld ms (slow disk?)", group.size(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
      }
      if (++since_checkpoint >= 4096) {
        // Never idle: checkpoint anyway now and then, so the WAL stays bounded.
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        since_checkpoint = 0;
      }
      std::fill(woken.begin(), woken.end(), 0);
      for (Op* op : group) {
        op->ok = ok;
        // The return ring has the same capacity as the outgoing one, which bounds what is in
        // flight per core, so this push cannot fail for long.
        // Read the core first: once pushed, the op belongs to that core's loop (which frees it).
        const int core = op->core;
        while (!per_core_[core]->from_store.push(op)) std::this_thread::yield();
        woken[core] = 1;
      }
      for (int c = 0; c < cores_; ++c)
        if (woken[c] && wake_) wake_(c);
    }
    if (!running_.load()) {
      bool empty = true;
      for (auto& pc : per_core_) empty &= pc->to_store.empty();
      if (empty) break;
    }
  }
}

bool SqliteRoomStore::commit(std::vector<Op*>& group) {
  auto fail = [this](const char* what) {
    RC_ERROR("store %s: %s failed: %s; %s", path().c_str(), what, sqlite3_errmsg(db_),
             "writes of this group are refused");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    failures_.fetch_add(1, std::memory_order_relaxed);
    return false;
  };
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return fail("BEGIN");
  for (Op* op : group) {
    const std::string& room = op->room;
    int rc = SQLITE_DONE;
    if (op->kind == Op::Kind::kAppend) {
      const hub::HistoryRecord& r = op->rec;
      sqlite3_stmt* st = insert_message_;
      sqlite3_bind_text(st, 1, room.data(), static_cast<int>(room.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, static_cast<int64_t>(r.seq));
      sqlite3_bind_int64(st, 3, r.ts_ms);
      sqlite3_bind_int64(st, 4, static_cast<int64_t>(r.sender));
      sqlite3_bind_text(st, 5, r.user.data(), static_cast<int>(r.user.size()), SQLITE_STATIC);
      std::string_view data = r.data();
      sqlite3_bind_blob(st, 6, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
      sqlite3_bind_blob(st, 7, r.event->data(), static_cast<int>(r.event->size()), SQLITE_STATIC);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc == SQLITE_DONE) {
        st = upsert_room_;
        sqlite3_bind_text(st, 1, room.data(), static_cast<int>(room.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, static_cast<int64_t>(r.seq));
        rc = sqlite3_step(st);
        sqlite3_reset(st);
      }
      if (rc == SQLITE_DONE && r.seq > op->history) {
        // History stays bounded to the room's N on disk as in memory.
        st = trim_messages_;
        sqlite3_bind_text(st, 1, room.data(), static_cast<int>(room.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, static_cast<int64_t>(r.seq - op->history));
        rc = sqlite3_step(st);
        sqlite3_reset(st);
      }
    } else {
      sqlite3_stmt* st = op->value ? upsert_state_ : delete_state_;
      sqlite3_bind_text(st, 1, room.data(), static_cast<int>(room.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 2, op->key.data(), static_cast<int>(op->key.size()), SQLITE_STATIC);
      if (op->value) {
        sqlite3_bind_text(st, 3, op->value->data(), static_cast<int>(op->value->size()),
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, static_cast<int64_t>(op->order));
      }
      rc = sqlite3_step(st);
      sqlite3_reset(st);
    }
    if (rc != SQLITE_DONE) return fail("write");
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail("COMMIT");
  commits_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace ringcast::store
