// sluicectl top: a live terminal view of a running agent's traffic per
// service port and subset (GET /stats/window, the figures the /ui page
// shows), redrawn every second like top(1). --once prints one frame;
// --json prints the window's JSON instead (one document per refresh).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include "admin/admin_client.h"
#include "ctl/commands.h"

namespace sluice::ctl {

namespace {

using nlohmann::json;

volatile sig_atomic_t g_interrupted = 0;

std::string percent(const json& v) { return v.is_number() ? fmt::format("{:.1f}%", 100.0 * v.get<double>()) : "-"; }
std::string fixed(const json& v, int digits) {
  return v.is_number() ? fmt::format("{:.{}f}", v.get<double>(), digits) : "-";
}
std::string local_clock(double unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

std::string frame(const json& w, const std::string& admin) {
  std::string out;
  const json& st = w["status"];
  out += fmt::format("sluicectl top  {}  version {} ({})  window {} s  {}\n", admin, st.value("version", 0),
                     st.value("origin", ""), w.value("window_seconds", 10),
                     w["sampled_at"].is_number() ? local_clock(w["sampled_at"].get<double>()) : "no sample yet");
  // The latest applied change, and the latest refusal if it is newer.
  const json* applied = nullptr;
  for (const auto& c : w["changes"])
    if (c.value("kind", "") != "refused") applied = &c;
  if (applied != nullptr)
    out += fmt::format("last change  {} version {} ({}): {}\n", local_clock((*applied)["at"].get<double>()),
                       applied->value("version", 0), applied->value("kind", ""), applied->value("what", ""));
  if (!st["last_error"].is_null()) {
    out += fmt::format("REFUSED      {}; still serving version {}:\n", st["last_error"].value("at", ""),
                       st.value("version", 0));
    for (const auto& m : st["last_error"]["messages"]) out += "  " + m.get<std::string>() + "\n";
  }
  for (const auto& p : w["ports"]) {
    const bool l7 = p.value("plane", "") == "l7";
    out += "\n";
    if (l7) {
      out += fmt::format("{}:{}  L7  {} req/s  errors {}  p50 {} ms  p99 {} ms\n", p.value("service", ""),
                         p.value("port", 0), fixed(p["requests_per_s"], 1), percent(p["error_rate"]),
                         fixed(p["p50_ms"], 1), fixed(p["p99_ms"], 1));
      out += fmt::format("  {:<12} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8} {:>7}  {}\n", "SUBSET", "WEIGHT", "SHARE",
                         "REQ/S", "ERR", "P50 MS", "P99 MS", "EJECTED", "ACTIVE REQUESTS PER ENDPOINT");
    } else {
      out += fmt::format("{}:{}  L4  {} new conn/s\n", p.value("service", ""), p.value("port", 0),
                         fixed(p["connections_per_s"], 1));
      out += fmt::format("  {:<12} {:>8} {:>8} {:>9} {:>7}  {}\n", "SUBSET", "WEIGHT", "SHARE", "CONN/S", "EJECTED",
                         "ACTIVE FLOWS PER ENDPOINT");
    }
    for (const auto& s : p["subsets"]) {
      std::string endpoints;
      for (const auto& e : s.value("endpoints", json::array())) {
        const char* load = l7 ? "l7_active_requests" : "l4_active_flows";
        endpoints += fmt::format("{}{} {}{}", endpoints.empty() ? "" : ", ", e.value("name", ""),
                                 e.contains(load) ? e[load].dump() : "-", e.value("ejected", false) ? " EJECTED" : "");
      }
      const std::string name = s.value("name", "").empty() ? "(all)" : s.value("name", "");
      const std::string ejected = s.contains("ejected") ? s["ejected"].dump() : "-";
      if (l7) {
        out += fmt::format("  {:<12} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8} {:>7}  {}\n", name, percent(s["configured"]),
                           percent(s["observed"]), fixed(s["requests_per_s"], 1), percent(s["error_rate"]),
                           fixed(s["p50_ms"], 1), fixed(s["p99_ms"], 1), ejected, endpoints);
      } else {
        out += fmt::format("  {:<12} {:>8} {:>8} {:>9} {:>7}  {}\n", name, percent(s["configured"]),
                           percent(s["observed"]), fixed(s["connections_per_s"], 1), ejected, endpoints);
      }
    }
  }
  if (w["ports"].empty()) out += "\nno service port matches\n";
  return out;
}

// Keys without Enter and without echo while top runs; restored on exit.
class RawKeys {
 public:
  RawKeys() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawKeys() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  // Waits up to `ms` for a key; true when the user asked to quit (q).
  bool quit_within(int ms) {
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!g_interrupted) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!active_) {
        ::poll(nullptr, 0, static_cast<int>(left.count()));
        continue;
      }
      if (::poll(&pfd, 1, static_cast<int>(left.count())) == 1) {
        char c = 0;
        if (::read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) return true;
      }
    }
    return true;
  }

 private:
  termios saved_{};
  bool active_ = false;
};

}  // namespace

CommandBody define_top(CLI::App& command) {
  struct Options {
    AdminOptions admin;
    std::string service;
    bool once = false;
    double interval_s = 1.0;
  };
  auto o = std::make_shared<Options>();
  add_admin_options(command, o->admin);
  command.add_option("SERVICE", o->service, "show only this service (its host, as in the ServiceEntry)");
  command.add_flag("--once", o->once, "print one frame and exit (with --json: one JSON document)");
  command.add_option("--interval", o->interval_s, "seconds between refreshes")
      ->check(CLI::Range(0.2, 60.0))
      ->capture_default_str();
  command.footer(
      "Per service port and subset: the configured share, the observed share of new connections (L4) or\n"
      "requests (L7) over the agent's last 10 s, rates, error rate, p50/p99 latency (L7), per-endpoint active\n"
      "flows or requests, ejected hosts, and the last configuration change. Press q or Ctrl-C to quit.\n"
      "Exit status: 0; 2 if the agent cannot be reached (--once) or answers an error.");
  return [o] {
    std::string path = "/stats/window";
    if (!o->service.empty()) {
      path += "?service=";
      for (unsigned char c : o->service)
        path += std::isalnum(c) || c == '.' || c == '-' || c == '_' ? std::string(1, static_cast<char>(c))
                                                                    : fmt::format("%{:02X}", c);
    }
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_interrupted = 1; };
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    RawKeys keys;
    const bool tty = isatty(STDOUT_FILENO) && !o->admin.json && !o->once;
    const admin::AdminTarget target = read_target(o->admin);
    const std::string source = target.socket_path.empty() ? target.address : target.socket_path;
    for (;;) {
      std::string text;
      bool ok = false;
      try {
        auto reply = admin::admin_request(target, "GET", path, "");
        json body = json::parse(reply.body, nullptr, false);
        if (reply.status == 200 && body.is_object()) {
          ok = true;
          text = o->admin.json ? body.dump(o->once ? 2 : -1) + "\n" : frame(body, source);
        } else {
          text = fmt::format("sluicectl top: {} answered {}\n", path, reply.status);
        }
      } catch (const std::exception& e) {
        // A restarting agent is part of what top watches: keep trying.
        text = fmt::format("sluicectl top: {} ({}); retrying\n", e.what(), running_with(target));
      }
      if (o->once) {
        (ok ? std::cout : std::cerr) << text << std::flush;
        return ok ? kExitOk : kExitUsage;
      }
      // Home the cursor and clear the screen, as top(1) redraws.
      std::cout << (tty ? "\x1b[H\x1b[2J" : "") << text << std::flush;
      if (keys.quit_within(static_cast<int>(o->interval_s * 1000))) return kExitOk;
    }
  };
}

}  // namespace sluice::ctl
