#include <gtest/gtest.h>

#include <vector>

#include "ringcast/hub/history.h"
#include "ringcast/hub/room.h"

using namespace ringcast::hub;

namespace {
std::vector<uint64_t> seqs_newest(const HistoryRing& h, size_t off, size_t lim) {
  std::vector<uint64_t> out;
  h.newest_first(off, lim, [&](const HistoryRecord& r) { out.push_back(r.seq); });
  return out;
}
}  // namespace

TEST(HistoryRing, KeepsLastNWithLimitOffsetAndSince) {
  HistoryRing h(5);
  for (uint64_t s = 1; s <= 8; ++s) {
    HistoryRecord r;
    r.seq = s;
    h.push(std::move(r));
  }
  EXPECT_EQ(h.size(), 5u);
  EXPECT_EQ(seqs_newest(h, 0, 3), (std::vector<uint64_t>{8, 7, 6}));
  EXPECT_EQ(seqs_newest(h, 3, 10), (std::vector<uint64_t>{5, 4}));
  EXPECT_EQ(seqs_newest(h, 5, 10), (std::vector<uint64_t>{}));
  std::vector<uint64_t> since;
  h.since(5, [&](const HistoryRecord& r) { since.push_back(r.seq); });
  EXPECT_EQ(since, (std::vector<uint64_t>{6, 7, 8}));
  since.clear();
  h.since(0, [&](const HistoryRecord& r) { since.push_back(r.seq); });
  EXPECT_EQ(since, (std::vector<uint64_t>{4, 5, 6, 7, 8}));  // older ones are gone
  std::vector<uint64_t> last;
  h.last(2, [&](const HistoryRecord& r) { last.push_back(r.seq); });
  EXPECT_EQ(last, (std::vector<uint64_t>{7, 8}));
}

TEST(HistoryRing, ZeroCapacityKeepsNothing) {
  HistoryRing h(0);
  HistoryRecord r;
  r.seq = 1;
  h.push(std::move(r));
  EXPECT_EQ(h.size(), 0u);
}

TEST(RoomRegistry, SharesRoomsAndFreesUnpinnedOnes) {
  RoomRegistry reg(2, 0, {{"chat-*", 50}, {"exact", 7}});
  SharedRoom* a = reg.acquire("lobby");
  SharedRoom* b = reg.acquire("lobby");
  EXPECT_EQ(a, b);
  EXPECT_EQ(reg.size(), 1u);
  reg.release(a);
  reg.release(b);
  EXPECT_EQ(reg.size(), 0u) << "a room without history goes when unused";
  SharedRoom* c = reg.acquire("chat-42");
  EXPECT_EQ(c->history().capacity(), 50u);
  reg.release(c);
  EXPECT_EQ(reg.size(), 1u) << "a room with history lives on";
  EXPECT_EQ(reg.history_for("exact"), 7u);
  EXPECT_EQ(reg.history_for("exactly"), 0u);
  SharedRoom* d = reg.acquire("chat-42");
  EXPECT_EQ(d, c);
  EXPECT_GE(d->home(), 0);
  EXPECT_LT(d->home(), 2);
  reg.release(d);
}
