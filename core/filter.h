// Server-side event filters.
//
// Grammar (JSON object, every key optional; see docs/FILTERS.md):
//   event_types, session_ids (or session_id: one string), agent_ids,
//   tool_names, statuses, models, feature_ids : arrays of strings; an event
//       matches when its field is one of the listed values
//   cost_threshold_tokens : integer >= 0; matches when cost_tokens > it
//   min_duration_ms       : number >= 0; matches when duration_ms >= it
//   any                   : non-empty array of filters; matches when one does
// All present keys combine with AND. `{}` matches everything.
// Unknown keys, wrong types and an empty `any` are errors that name the key.
//
// Matches() never allocates. A Filter is an immutable value: copy it freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/status.h"

namespace tailbus {

struct FilterLimits {
  size_t max_values_per_list = 1'000;  // most values in one list
  size_t max_any = 32;                 // most sub-filters in one `any`
  size_t max_any_depth = 4;            // `any` inside `any` inside …
  size_t max_json_bytes = 64 * 1024;   // largest filter text
};

class Filter {
 public:
  Filter() = default;  // matches everything

  // Parses a filter. `path` prefixes error messages: Parse("{\"x\":1}", "filter")
  // fails with "filter.x: unknown key".
  static Result<Filter> Parse(std::string_view json, std::string_view path = "filter",
                              const FilterLimits& limits = {});

  bool Matches(const EventFields& event) const noexcept;

  // Canonical JSON: keys in a fixed order, lists sorted and de-duplicated,
  // absent keys omitted; `session_id` is written as `session_ids`.
  // Parse(f.ToJson()) equals f.
  std::string ToJson() const;

  bool MatchesEverything() const;

  // The top-level session_ids list (empty when sessions are not constrained at
  // the top level). Storage uses it to read through the per-session index.
  const std::vector<std::string>& session_ids() const { return session_ids_; }

  // This filter further restricted to one session (AND). Used by endpoints
  // bound to a session: nothing in the filter can widen it.
  Filter RestrictedToSession(std::string_view session_id) const;

  bool operator==(const Filter& other) const;

 private:
  std::vector<std::string> event_types_;
  std::vector<std::string> session_ids_;
  std::vector<std::string> agent_ids_;
  std::vector<std::string> tool_names_;
  std::vector<std::string> statuses_;
  std::vector<std::string> models_;
  std::vector<std::string> feature_ids_;
  std::optional<int64_t> cost_threshold_tokens_;
  std::optional<double> min_duration_ms_;
  std::vector<Filter> any_;
  // True when a restriction left no possible session (e.g. session_ids [a]
  // restricted to b): matches nothing.
  bool matches_nothing_ = false;

  friend class FilterParser;
};

}  // namespace tailbus
