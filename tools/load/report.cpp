#include "load/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ringcast::load {

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Plain number for JSON: integers without a fraction, others with up to 6 significant digits.
std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt("%.0f", v);
  return fmt("%.6g", v);
}

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

std::string pct_label(double p) {
  std::string s = fmt("%g", p);
  return "p" + s;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// A "nice" step (1, 2 or 5 times a power of ten) giving about `ticks` intervals over [0, hi].
double nice_step(double hi, int ticks) {
  if (hi <= 0) return 1;
  double raw = hi / ticks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double step = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return step * mag;
}

}  // namespace

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\t':
        o += "\\t";
        break;
      case '\r':
        o += "\\r";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

std::string format_table(const Results& r) {
  std::string o;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %s\n", "scenario", r.scenario.c_str());
  o += line;
  std::snprintf(line, sizeof line, "%-22s %s\n", "url", r.url.c_str());
  o += line;
  for (const auto& m : r.metrics) {
    std::string v = m.value == std::floor(m.value) && std::fabs(m.value) < 1e15
                        ? fmt("%.0f", m.value)
                        : fmt("%.2f", m.value);
    std::snprintf(line, sizeof line, "%-22s %s %s\n", m.label.c_str(), v.c_str(), m.unit.c_str());
    o += line;
  }
  std::string errs;
  uint64_t total = 0;
  for (const auto& [k, n] : r.errors) {
    total += n;
    if (n) errs += (errs.empty() ? "" : ", ") + k + " " + std::to_string(n);
  }
  std::snprintf(line, sizeof line, "%-22s %llu%s%s%s\n", "errors",
                static_cast<unsigned long long>(total), errs.empty() ? "" : " (", errs.c_str(),
                errs.empty() ? "" : ")");
  o += line;
  std::snprintf(line, sizeof line, "%-22s %llu\n", "loss", static_cast<unsigned long long>(r.loss));
  o += line;
  if (!r.per_url.empty()) {
    o += "\nper URL\n";
    for (const auto& u : r.per_url) {
      o += "  " + u.url + "\n";
      std::snprintf(
          line, sizeof line, "    connections %llu, opened %llu, failed %llu, closed %llu",
          static_cast<unsigned long long>(u.connections), static_cast<unsigned long long>(u.opened),
          static_cast<unsigned long long>(u.failed), static_cast<unsigned long long>(u.closed));
      o += line;
      for (const auto& m : u.metrics) o += ", " + m.label + " " + fmt("%.0f", m.value);
      o += "\n";
    }
  }
  if (!r.latency.empty()) {
    std::snprintf(line, sizeof line, "\n%-22s %10s %10s %10s %10s %10s %10s %10s\n", "latency (us)",
                  "count", "p50", "p90", "p99", "p99.9", "max", "mean");
    o += line;
    for (const auto& s : r.latency) {
      const Histogram& h = s.hist;
      std::snprintf(line, sizeof line, "%-22s %10llu %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n",
                    s.label.c_str(), static_cast<unsigned long long>(h.count()),
                    us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
                    us(h.percentile(99.9)), us(h.max()), h.mean() / 1000.0);
      o += line;
    }
  }
  o += "\nresult: ";
  if (r.passed()) {
    o += "PASS\n";
  } else {
    o += "FAIL\n";
    for (const auto& f : r.failures) o += "  - " + f + "\n";
  }
  return o;
}

std::string format_json(const Results& r) {
  std::string o = "{\n";
  o += "  \"tool\": \"ringcast-load\",\n";
  o += "  \"scenario\": " + json_string(r.scenario) + ",\n";
  o += "  \"url\": " + json_string(r.url) + ",\n";
  o += "  \"passed\": " + std::string(r.passed() ? "true" : "false") + ",\n";
  o += "  \"failures\": [";
  for (size_t i = 0; i < r.failures.size(); ++i) o += (i ? ", " : "") + json_string(r.failures[i]);
  o += "],\n  \"settings\": {";
  for (size_t i = 0; i < r.settings.size(); ++i)
    o += (i ? ", " : "") + json_string(r.settings[i].first) + ": " +
         json_string(r.settings[i].second);
  o += "},\n  \"metrics\": {";
  for (size_t i = 0; i < r.metrics.size(); ++i)
    o += std::string(i ? "," : "") + "\n    " + json_string(r.metrics[i].key) + ": " +
         num(r.metrics[i].value);
  o += "\n  },\n  \"errors\": {";
  uint64_t total = 0;
  for (size_t i = 0; i < r.errors.size(); ++i) {
    total += r.errors[i].second;
    o += (i ? ", " : "") + json_string(r.errors[i].first) + ": " +
         std::to_string(r.errors[i].second);
  }
  o += "},\n  \"errors_total\": " + std::to_string(total) + ",\n";
  o += "  \"loss\": " + std::to_string(r.loss) + ",\n";
  if (!r.per_url.empty()) {
    o += "  \"per_url\": [";
    for (size_t i = 0; i < r.per_url.size(); ++i) {
      const UrlStats& u = r.per_url[i];
      o += std::string(i ? "," : "") + "\n    {\"url\": " + json_string(u.url) +
           ", \"connections\": " + std::to_string(u.connections) +
           ", \"opened\": " + std::to_string(u.opened) +
           ", \"failed\": " + std::to_string(u.failed) +
           ", \"closed\": " + std::to_string(u.closed);
      for (const auto& m : u.metrics) o += ", " + json_string(m.key) + ": " + num(m.value);
      o += "}";
    }
    o += "\n  ],\n";
  }
  o += "  \"latency_us\": {";
  for (size_t i = 0; i < r.latency.size(); ++i) {
    const Histogram& h = r.latency[i].hist;
    o += std::string(i ? "," : "") + "\n    " + json_string(r.latency[i].key) + ": {";
    o += "\"count\": " + std::to_string(h.count());
    o += ", \"min\": " + num(us(h.min()));
    o += ", \"mean\": " + num(h.mean() / 1000.0);
    for (double p : kReportPercentiles)
      o += ", \"" + pct_label(p) + "\": " + num(us(h.percentile(p)));
    o += ", \"max\": " + num(us(h.max()));
    o += ",\n      \"percentiles\": [";
    static constexpr double kCurve[] = {0,  10, 20, 25, 30,   40,   50,    60,    70,     75,
                                        80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100};
    bool first = true;
    for (double p : kCurve) {
      o += std::string(first ? "" : ", ") + "[" + num(p) + ", " + num(us(h.percentile(p))) + "]";
      first = false;
    }
    o += "]}";
  }
  o += "\n  }\n}\n";
  return o;
}

std::string format_svg(const Results& r) {
  constexpr double W = 800, H = 480, L = 80, R = 180, T = 40, B = 60;
  constexpr double kMaxNines = 5;  // x axis up to 99.999 %
  const double pw = W - L - R, ph = H - T - B;
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};

  std::vector<const LatencySeries*> series;
  double ymax = 0;
  for (const auto& s : r.latency)
    if (s.hist.count()) {
      series.push_back(&s);
      ymax = std::max(ymax, us(s.hist.max()));
    }
  double step = nice_step(ymax, 6);
  double ytop = std::max(step, std::ceil(ymax / step) * step);
  auto x_of = [&](double p) {  // p in [0, 100)
    double nines = -std::log10(1.0 - p / 100.0);
    return L + pw * std::min(nines, kMaxNines) / kMaxNines;
  };
  auto y_of = [&](double v) { return T + ph * (1.0 - v / ytop); };

  std::string o;
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) +
       "\" viewBox=\"0 0 " + num(W) + " " + num(H) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(W / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
       xml_escape("ringcast-load " + r.scenario + ": latency by percentile") + "</text>\n";
  // Grid and axes.
  for (double v = 0; v <= ytop + step / 2; v += step) {
    double y = y_of(v);
    o += "<line x1=\"" + num(L) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + num(L + pw) +
         "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"#ddd\"/>\n";
    o += "<text x=\"" + num(L - 6) + "\" y=\"" + fmt("%.1f", y + 4) + "\" text-anchor=\"end\">" +
         fmt("%g", v) + "</text>\n";
  }
  static const char* kXLabels[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
  for (int i = 0; i <= static_cast<int>(kMaxNines); ++i) {
    double x = L + pw * i / kMaxNines;
    o += "<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + num(T) + "\" x2=\"" + fmt("%.1f", x) +
         "\" y2=\"" + num(T + ph) + "\" stroke=\"#ddd\"/>\n";
    o += "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + num(T + ph + 18) +
         "\" text-anchor=\"middle\">" + kXLabels[i] + "</text>\n";
  }
  o += "<rect x=\"" + num(L) + "\" y=\"" + num(T) + "\" width=\"" + num(pw) + "\" height=\"" +
       num(ph) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  o += "<text x=\"" + num(L + pw / 2) + "\" y=\"" + num(H - 15) +
       "\" text-anchor=\"middle\">percentile</text>\n";
  o += "<text transform=\"translate(20," + num(T + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">latency (µs)</text>\n";
  if (series.empty())
    o += "<text x=\"" + num(L + pw / 2) + "\" y=\"" + num(T + ph / 2) +
         "\" text-anchor=\"middle\">no samples</text>\n";
  // Curves: 400 points evenly spaced on the log axis.
  for (size_t si = 0; si < series.size(); ++si) {
    const Histogram& h = series[si]->hist;
    const char* color = kColors[si % 5];
    o += "<polyline fill=\"none\" stroke=\"" + std::string(color) +
         "\" stroke-width=\"2\" points=\"";
    constexpr int kPoints = 400;
    for (int i = 0; i <= kPoints; ++i) {
      double nines = kMaxNines * i / kPoints;
      double p = 100.0 * (1.0 - std::pow(10.0, -nines));
      if (i == kPoints) p = 100;
      double x = i == kPoints ? L + pw : x_of(p);
      o += fmt("%.1f", x) + "," + fmt("%.1f", y_of(us(h.percentile(p)))) + " ";
    }
    o += "\"/>\n";
    double ly = T + 10 + 36.0 * static_cast<double>(si);
    o += "<line x1=\"" + num(L + pw + 12) + "\" y1=\"" + fmt("%.1f", ly) + "\" x2=\"" +
         num(L + pw + 32) + "\" y2=\"" + fmt("%.1f", ly) + "\" stroke=\"" + color +
         "\" stroke-width=\"3\"/>\n";
    o += "<text x=\"" + num(L + pw + 38) + "\" y=\"" + fmt("%.1f", ly + 4) + "\">" +
         xml_escape(series[si]->label) + "</text>\n";
    o += "<text x=\"" + num(L + pw + 38) + "\" y=\"" + fmt("%.1f", ly + 19) +
         "\" font-size=\"10\" fill=\"#555\">" +
         xml_escape("p50 " + fmt("%.0f", us(h.percentile(50))) + " p99 " +
                    fmt("%.0f", us(h.percentile(99))) + " µs") +
         "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace ringcast::load
