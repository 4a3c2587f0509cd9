#include "ringcast/websocket/worker_metrics.h"

namespace ringcast::websocket {

std::string_view refused_upgrade_name(RefusedUpgrade r) {
  switch (r) {
    case RefusedUpgrade::kBadRequest:
      return "bad_request";
    case RefusedUpgrade::kVersion:
      return "unsupported_version";
    case RefusedUpgrade::kNoRoute:
      return "no_route";
    case RefusedUpgrade::kOrigin:
      return "origin";
    case RefusedUpgrade::kShuttingDown:
      return "shutting_down";
    case RefusedUpgrade::kConnectionLimit:
      return "connection_limit";
    case RefusedUpgrade::kCount:
      break;
  }
  return "other";
}

size_t close_code_slot(uint16_t code) {
  if (code >= 1000 && code <= 1014) return code - 1000;
  if (code >= 3000 && code <= 3999) return 15;
  if (code >= 4000 && code <= 4999) return 16;
  return 17;
}

std::string_view close_code_slot_label(size_t slot) {
  static constexpr std::string_view kLabels[kCloseCodeSlots] = {
      "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008",
      "1009", "1010", "1011", "1012", "1013", "1014", "3xxx", "4xxx", "other"};
  return slot < kCloseCodeSlots ? kLabels[slot] : "other";
}

void WorkerMetrics::refuse(int status, bool stopping) {
  RefusedUpgrade r = RefusedUpgrade::kBadRequest;
  switch (status) {
    case 426:
      r = RefusedUpgrade::kVersion;
      break;
    case 404:
      r = RefusedUpgrade::kNoRoute;
      break;
    case 403:
      r = RefusedUpgrade::kOrigin;
      break;
    case 503:
      r = stopping ? RefusedUpgrade::kShuttingDown : RefusedUpgrade::kConnectionLimit;
      break;
    default:
      break;
  }
  add(refused[static_cast<size_t>(r)]);
}

}  // namespace ringcast::websocket
