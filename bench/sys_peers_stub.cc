#include "bench/systems.h"
namespace tailbus::bench {
std::vector<Row> RunJetStream(const Config&, const Scenarios&) { return {}; }
std::vector<Row> RunRedis(const Config&, const Scenarios&) { return {}; }
}  // namespace tailbus::bench
