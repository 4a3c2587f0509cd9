// Config keys of the seed profiles: [profiles.livemap] marker and position limits and the [tokens]
// identities.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "ringcast/app/config.h"
#include "ringcast/profiles/livemap_profile.h"

using namespace ringcast::app;

namespace {

// Loads and validates `text` as a config file: the error text, or "" when it is accepted.
std::string error_of(const std::string& text, Config* out = nullptr) {
  char tmpl[] = "/tmp/ringcast-config-XXXXXX";
  int fd = mkstemp(tmpl);
  ::close(fd);
  std::ofstream(tmpl) << text;
  Config cfg;
  std::string error;
  try {
    load_config_file(tmpl, cfg);
    validate_config(cfg);
  } catch (const ConfigError& e) {
    error = e.what();
  }
  std::remove(tmpl);
  if (out) *out = cfg;
  return error;
}

}  // namespace

TEST(ConfigLivemap, DefaultsKeepAFullSyncUnderOneMiB) {
  Config cfg;
  EXPECT_EQ(cfg.livemap.max_markers, 1000);
  EXPECT_EQ(cfg.livemap.max_marker_bytes, 1024);
  // 36 + 1000 * 1024 + 999 commas.
  EXPECT_EQ(ringcast::profiles::markers_sync_worst_case(1000, 1024), 1025035u);
  EXPECT_LE(ringcast::profiles::markers_sync_worst_case(1000, 1024), 1u << 20);
  EXPECT_EQ(ringcast::profiles::kMarkersSyncEnvelopeBytes, 36u);
  EXPECT_NO_THROW(validate_config(cfg));
}

TEST(ConfigLivemap, ReadsTheLimits) {
  Config cfg;
  EXPECT_EQ(error_of("[profiles.livemap]\nmax_markers = 20\nmax_marker_bytes = 300\n", &cfg), "");
  EXPECT_EQ(cfg.livemap.max_markers, 20);
  EXPECT_EQ(cfg.livemap.max_marker_bytes, 300);
  // Exactly 1 MiB is accepted: 36 + 1 * 1048540 + 0 = 1048576.
  EXPECT_EQ(error_of("[profiles.livemap]\nmax_markers = 1\nmax_marker_bytes = 1048540\n"), "");
}

TEST(ConfigLivemap, RefusesBadValuesAndSyncsAboveOneMiB) {
  std::string e = error_of("[profiles.livemap]\nmax_markers = 0\n");
  EXPECT_NE(e.find("profiles.livemap.max_markers"), std::string::npos) << e;
  EXPECT_NE(e.find(":2"), std::string::npos) << e;
  e = error_of("[profiles.livemap]\nmax_marker_bytes = \"big\"\n");
  EXPECT_NE(e.find("profiles.livemap.max_marker_bytes"), std::string::npos) << e;
  e = error_of("[profiles.livemap]\nmax_marker_bytes = 10\n");  // below 64
  EXPECT_NE(e.find("profiles.livemap.max_marker_bytes"), std::string::npos) << e;
  // One byte over: 36 + 1048541 = 1048577.
  e = error_of("[profiles.livemap]\nmax_markers = 1\nmax_marker_bytes = 1048541\n");
  EXPECT_NE(e.find("profiles.livemap"), std::string::npos) << e;
  EXPECT_NE(e.find("1048577"), std::string::npos) << e;
  e = error_of("[profiles.livemap]\nmax_markers = 2000\n");  // 2000 default-size markers: ~2 MiB
  EXPECT_NE(e.find("max_markers"), std::string::npos) << e;
  // A disabled live map is not checked.
  EXPECT_EQ(error_of("[profiles.livemap]\nenabled = false\nmax_markers = 2000\n"), "");
}

TEST(ConfigLivemap, PositionLimitsKeepAFullPositionsSyncUnderOneMiB) {
  Config cfg;
  EXPECT_EQ(cfg.livemap.max_positions, 2000);
  EXPECT_EQ(cfg.livemap.max_position_bytes, 512);
  // 40 + 2000 * 512 + 1999 commas.
  EXPECT_EQ(ringcast::profiles::kPositionsSyncEnvelopeBytes, 40u);
  EXPECT_EQ(ringcast::profiles::positions_sync_worst_case(2000, 512), 1026039u);
  EXPECT_EQ(error_of("[profiles.livemap]\nmax_positions = 30\nmax_position_bytes = 200\n", &cfg),
            "");
  EXPECT_EQ(cfg.livemap.max_positions, 30);
  EXPECT_EQ(cfg.livemap.max_position_bytes, 200);
  // Exactly 1 MiB is accepted: 40 + 1 * 1048536 = 1048576; one byte more is not.
  EXPECT_EQ(error_of("[profiles.livemap]\nmax_positions = 1\nmax_position_bytes = 1048536\n"), "");
  std::string e = error_of("[profiles.livemap]\nmax_positions = 1\nmax_position_bytes = 1048537\n");
  EXPECT_NE(e.find("max_positions"), std::string::npos) << e;
  EXPECT_NE(e.find("1048577"), std::string::npos) << e;
  e = error_of("[profiles.livemap]\nmax_positions = 4000\n");  // 4000 * 512: ~2 MiB
  EXPECT_NE(e.find("positions_sync"), std::string::npos) << e;
  e = error_of("[profiles.livemap]\nmax_positions = 0\n");
  EXPECT_NE(e.find("profiles.livemap.max_positions"), std::string::npos) << e;
  e = error_of("[profiles.livemap]\nmax_position_bytes = 10\n");  // below 64
  EXPECT_NE(e.find("profiles.livemap.max_position_bytes"), std::string::npos) << e;
  EXPECT_EQ(error_of("[profiles.livemap]\nenabled = false\nmax_positions = 4000\n"), "");
}

TEST(ConfigTokens, IdentitiesMustBeSafeToDisplay) {
  EXPECT_EQ(error_of("[tokens]\n\"t1\" = { user_id = \"u1\", nickname = \"Zoë\" }\n"), "");
  std::string e =
      error_of("[tokens]\n\"t1\" = { user_id = \"u1\", nickname = \"Al\\u202Eice\" }\n");
  EXPECT_NE(e.find("tokens.t1.nickname"), std::string::npos) << e;
  EXPECT_NE(e.find(":2"), std::string::npos) << e;
  e = error_of("[tokens]\n\"t1\" = { user_id = \"u\\u0000\" }\n");
  EXPECT_NE(e.find("tokens.t1.user_id"), std::string::npos) << e;
  e = error_of("[tokens]\n\"t1\" = { user_id = \"u1\", nickname = \"a\\nb\" }\n");
  EXPECT_NE(e.find("tokens.t1.nickname"), std::string::npos) << e;
}
