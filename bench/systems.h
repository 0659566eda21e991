// The systems under test. Each runs the requested scenarios against a server
// it starts itself (fresh temporary data directory, 127.0.0.1 only, pinned to
// cfg.server_cpu) and stops before returning.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace tailbus::bench {

using Scenarios = std::set<std::string>;
std::vector<Row> RunTailbus(const Config& cfg, const Scenarios& scenarios);
std::vector<Row> RunJetStream(const Config& cfg, const Scenarios& scenarios);
std::vector<Row> RunRedis(const Config& cfg, const Scenarios& scenarios);
std::string TailbusVersion(const Config& cfg);

// "--flag value" pieces shared by every row's reproduction command.
std::string CommandFor(const Config& cfg, const std::string& system, const std::string& scenario);

}  // namespace tailbus::bench
