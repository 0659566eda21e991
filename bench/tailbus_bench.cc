// tailbus-bench: the load tool. Runs ingest / fanout / catchup / connections
// against tailbus and, with the same workload, NATS JetStream and Redis
// Streams; prints a table with ratios (tailbus / peer) and writes JSON.
//
//   tailbus-bench --tailbus-bin build/release/cli/tailbus                 # everything
//   tailbus-bench --system tailbus --scenario ingest --producers 4 --batch 100
//   tailbus-bench --quick --json out.json
//
// Servers are started by the tool with temporary data directories on disk,
// listen on 127.0.0.1 only, are pinned to --server-cpu (like taskset -c) while
// the tool pins itself to --client-cpu, and are stopped before it exits.
#include <sched.h>
#include <sys/utsname.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "bench/systems.h"

namespace tailbus::bench {

std::string CommandFor(const Config& cfg, const std::string& system, const std::string& scenario) {
  std::ostringstream o;
  o << "tailbus-bench --system " << system << " --scenario " << scenario;
  if (scenario == "ingest")
    o << " --producers " << cfg.producers << " --size " << cfg.size << " --sessions "
      << cfg.sessions << " --batch " << cfg.batch << " --window " << cfg.window << " --duration "
      << cfg.duration_s << " --ingest-rate " << cfg.ingest_rate;
  if (scenario == "fanout") {
    o << " --rates ";
    for (size_t i = 0; i < cfg.fanout_rates.size(); ++i) o << (i ? "," : "") << cfg.fanout_rates[i];
    o << " --subs " << cfg.subs << " --all-subs " << cfg.all_subs << " --sessions " << cfg.sessions
      << " --size " << cfg.size << " --duration " << cfg.duration_s;
  }
  if (scenario == "catchup")
    o << " --catchup-events " << cfg.catchup_events << " --size " << cfg.size;
  if (scenario == "connections") o << " --conns " << cfg.conns;
  return o.str();
}

namespace {

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

// The headline figure of each scenario, and whether higher is better.
std::pair<std::string, bool> Headline(const std::string& scenario) {
  if (scenario == "fanout") return {"lat_p99_ms", false};
  if (scenario == "connections") return {"kib_per_conn", false};
  return {"events_s", true};
}

// Peer rows are matched to tailbus rows by scenario and a mode key.
std::string ModeKey(const Row& r) {
  if (r.scenario == "ingest") {
    // tailbus HTTP batch B and WS window W both compare with the peer's window.
    return r.mode.find("fixed") != std::string::npos ? "fixed" : "saturation";
  }
  if (r.scenario == "fanout") return r.mode;
  return r.scenario;
}

void PrintRatios(const std::vector<Row>& rows, std::string* md) {
  std::printf("\nratios (tailbus / peer, same run):\n");
  *md +=
      "| scenario | tailbus mode | metric | tailbus | peer | peer value | ratio "
      "|\n|---|---|---|---|---|---|---|\n";
  for (const auto& t : rows) {
    if (t.system != "tailbus") continue;
    auto [metric, higher] = Headline(t.scenario);
    for (const auto& p : rows) {
      if (p.system == "tailbus" || p.scenario != t.scenario || ModeKey(p) != ModeKey(t)) continue;
      const double a = t.Get(metric), b = p.Get(metric);
      if (a < 0 || b <= 0) continue;
      const double ratio = a / b;
      std::printf("  %-11s %-34s %-13s tailbus=%-10.4g %-9s=%-10.4g ratio=%.2f (%s)\n",
                  t.scenario.c_str(), t.mode.c_str(), metric.c_str(), a, p.system.c_str(), b, ratio,
                  higher ? "higher is better" : "lower is better");
      char line[512];
      std::snprintf(line, sizeof line, "| %s | %s | %s | %.4g | %s | %.4g | **%.2f** |\n",
                    t.scenario.c_str(), t.mode.c_str(), metric.c_str(), a, p.system.c_str(), b,
                    ratio);
      *md += line;
    }
  }
}

std::string MdTable(const std::vector<Row>& rows) {
  std::string md;
  std::string cur;
  for (const auto& r : rows) {
    if (r.scenario != cur) {
      cur = r.scenario;
      md += "\n#### " + cur + "\n\n| system | mode |";
      std::string sep = "|---|---|";
      for (const auto& [k, v] : r.metrics) {
        md += " " + k + " |";
        sep += "---|";
      }
      md += "\n" + sep + "\n";
    }
    md += "| " + r.system + " | " + r.mode + " |";
    for (const auto& [k, v] : r.metrics) {
      char b[64];
      if (v >= 1000)
        std::snprintf(b, sizeof b, " %.0f |", v);
      else
        std::snprintf(b, sizeof b, " %.3g |", v);
      md += b;
    }
    md += "\n";
  }
  md += "\nCommands (each row can be reproduced alone):\n\n";
  std::map<std::string, bool> seen;
  for (const auto& r : rows)
    if (!seen[r.command]) {
      seen[r.command] = true;
      md += "    " + r.command + "\n";
    }
  return md;
}

}  // namespace
}  // namespace tailbus::bench

int main(int argc, char** argv) {
  using namespace tailbus::bench;
  Config cfg;
  std::string system = "all", scenario = "all", json, md_out, rates;
  CLI::App app{"tailbus-bench: load tool for tailbus, NATS JetStream and Redis Streams"};
  app.add_option("--system", system, "tailbus | jetstream | redis | all (comma list)")
      ->capture_default_str();
  app.add_option("--scenario", scenario,
                 "ingest | fanout | catchup | connections | all (comma list)")
      ->capture_default_str();
  app.add_option("--tailbus-bin", cfg.tailbus_bin, "tailbus executable")->capture_default_str();
  app.add_option("--producers", cfg.producers, "ingest: producers (P)")->capture_default_str();
  app.add_option("--size", cfg.size, "event size in bytes (S)")->capture_default_str();
  app.add_option("--sessions", cfg.sessions, "sessions / subjects / streams (K)")
      ->capture_default_str();
  app.add_option("--batch", cfg.batch, "ingest: events per HTTP POST (B)")->capture_default_str();
  app.add_option("--window", cfg.window, "ingest: events in flight per producer (W)")
      ->capture_default_str();
  app.add_option("--duration", cfg.duration_s, "measured seconds per run")->capture_default_str();
  app.add_option("--warmup", cfg.warmup_s, "seconds before measuring")->capture_default_str();
  app.add_option("--ingest-rate", cfg.ingest_rate, "fixed offered ingest rate, events/s (0: skip)")
      ->capture_default_str();
  app.add_option("--rates", rates, "fanout offered rates, comma list (default 10000,40000)");
  app.add_option("--subs", cfg.subs, "fanout: session subscribers (C)")->capture_default_str();
  app.add_option("--all-subs", cfg.all_subs, "fanout: all-session subscribers (half filtered)")
      ->capture_default_str();
  app.add_option("--conns", cfg.conns, "connections: idle connections (N)")->capture_default_str();
  app.add_option("--catchup-events", cfg.catchup_events, "catchup: log length (M)")
      ->capture_default_str();
  app.add_option("--catchup-reps", cfg.catchup_reps,
                 "catchup: reads of the whole log (median reported)")
      ->capture_default_str();
  app.add_option("--server-cpu", cfg.server_cpu, "CPU for the server (-1: no pinning)")
      ->capture_default_str();
  app.add_option("--client-cpu", cfg.client_cpu, "CPU for this tool (-1: no pinning)")
      ->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir,
                 "parent of the temporary data directories (default: a new dir under /var/tmp)");
  app.add_option("--json", json, "write results as JSON");
  app.add_option("--markdown", md_out, "write the results tables as Markdown");
  app.add_flag("--quick", cfg.quick, "short runs (make bench QUICK=1)");
  CLI11_PARSE(app, argc, argv);

  if (cfg.quick) {
    if (!app.count("--duration")) cfg.duration_s = 3;
    if (!app.count("--warmup")) cfg.warmup_s = 0.5;
    if (!app.count("--catchup-events")) cfg.catchup_events = 200'000;
    if (!app.count("--catchup-reps")) cfg.catchup_reps = 1;
    if (!app.count("--rates")) cfg.fanout_rates = {10'000};
    if (!app.count("--ingest-rate")) cfg.ingest_rate = 0;
  }
  if (!rates.empty()) {
    cfg.fanout_rates.clear();
    std::stringstream ss(rates);
    std::string r;
    while (std::getline(ss, r, ',')) cfg.fanout_rates.push_back(std::stod(r));
  }
  if (cfg.tailbus_bin.empty()) {
    std::string self = argv[0];
    auto slash = self.rfind('/');
    cfg.tailbus_bin =
        (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/../cli/tailbus";
  }
  bool own_dir = false;
  if (cfg.data_dir.empty()) {
    char tmpl[] = "/var/tmp/tailbus-bench.XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 2;
    }
    cfg.data_dir = tmpl;
    own_dir = true;
  }
  const int ncpu = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (ncpu < 2) cfg.server_cpu = cfg.client_cpu = -1;
  if (cfg.client_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cfg.client_cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  std::set<std::string> systems, scenarios;
  auto split = [](const std::string& s, std::set<std::string>& out, std::vector<std::string> all) {
    std::stringstream ss(s);
    std::string x;
    while (std::getline(ss, x, ','))
      if (x == "all")
        out.insert(all.begin(), all.end());
      else
        out.insert(x);
  };
  split(system, systems, {"tailbus", "jetstream", "redis"});
  split(scenario, scenarios, {"ingest", "fanout", "catchup", "connections"});

  utsname u{};
  uname(&u);
  std::string header =
      "machine: " + std::to_string(ncpu) + " CPUs, " +
      RunCapture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'") + ", kernel " +
      u.release + ", " + RunCapture("free -m | awk '/Mem:/{print $2\" MiB RAM\"}'") + "\n";
  header += "pinning: " +
            (cfg.server_cpu >= 0 ? "server(s) on CPU " + std::to_string(cfg.server_cpu) +
                                       ", load generator on CPU " + std::to_string(cfg.client_cpu) +
                                       " (sched_setaffinity, as taskset -c)"
                                 : std::string("none (fewer than 2 CPUs)")) +
            "\n";
  header += "versions: " + TailbusVersion(cfg) + "; " + RunCapture("nats-server --version 2>&1") +
            "; " + RunCapture("redis-server --version 2>&1 | cut -d' ' -f1-3") + "\n";
  header += "data dir: " + cfg.data_dir + " (disk)\n";
  std::printf("%s\n", header.c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  int rc = 0;
  std::string failure;
  try {
    if (systems.count("tailbus")) {
      auto r = RunTailbus(cfg, scenarios);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (systems.count("jetstream")) {
      auto r = RunJetStream(cfg, scenarios);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (systems.count("redis")) {
      auto r = RunRedis(cfg, scenarios);
      rows.insert(rows.end(), r.begin(), r.end());
    }
  } catch (const std::exception& e) {
    failure = e.what();
    rc = 1;
  }
  // Group rows by scenario for the tables.
  std::vector<Row> sorted;
  for (const char* s : {"ingest", "fanout", "catchup", "connections"})
    for (const auto& r : rows)
      if (r.scenario == s) sorted.push_back(r);

  std::printf("\nresults:\n");
  for (const auto& r : sorted) PrintRow(r);
  std::string ratios_md;
  PrintRatios(sorted, &ratios_md);
  if (!failure.empty()) std::printf("\nFAILED: %s\n", failure.c_str());

  if (!md_out.empty()) {
    std::ofstream o(md_out);
    o << "```\n"
      << header << "```\n"
      << MdTable(sorted) << "\n#### Ratios (tailbus ÷ peer, same run)\n\n"
      << ratios_md;
    if (!failure.empty()) o << "\n**FAILED:** " << failure << "\n";
  }
  if (!json.empty()) {
    std::ofstream o(json);
    o << "{\"header\":\"" << JsonEscape(header) << "\",\"failure\":\"" << JsonEscape(failure)
      << "\",\"rows\":[";
    for (size_t i = 0; i < sorted.size(); ++i) {
      const Row& r = sorted[i];
      o << (i ? ",\n" : "\n") << "{\"system\":\"" << r.system << "\",\"scenario\":\"" << r.scenario
        << "\",\"mode\":\"" << JsonEscape(r.mode) << "\",\"command\":\"" << JsonEscape(r.command)
        << "\",\"metrics\":{";
      for (size_t k = 0; k < r.metrics.size(); ++k)
        o << (k ? "," : "") << "\"" << r.metrics[k].first << "\":" << r.metrics[k].second;
      o << "}}";
    }
    o << "\n]}\n";
  }
  if (own_dir) RunCapture("rm -rf '" + cfg.data_dir + "'");
  return rc;
}
