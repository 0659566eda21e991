#include "core/filter.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "core/json_numbers.h"
#include "core/json_parse.h"

namespace tailbus {
namespace {

// Numbers are converted by core/json_parse.h, not by RapidJSON.
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// Renders a JSON value compactly for error messages, truncated.
std::string Describe(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  v.Accept(writer);
  std::string text(buf.GetString(), buf.GetSize());
  if (text.size() > 40) text = text.substr(0, 40) + "…";
  return text;
}

const char* TypeName(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "boolean";
  if (v.IsNumber()) return "number";
  if (v.IsString()) return "string";
  if (v.IsArray()) return "array";
  return "object";
}

bool Contains(const std::vector<std::string>& sorted, std::string_view value) noexcept {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), value,
                             [](const std::string& a, std::string_view b) { return a < b; });
  return it != sorted.end() && std::string_view(*it) == value;
}

bool ListMatches(const std::optional<std::vector<std::string>>& list,
                 std::string_view value) noexcept {
  return !list || Contains(*list, value);
}

void WriteList(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key,
               const std::optional<std::vector<std::string>>& list) {
  if (!list) return;
  w.Key(key);
  w.StartArray();
  for (const std::string& v : *list) w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  w.EndArray();
}

}  // namespace

// Builds Filters from JSON; a friend of Filter so it can fill the fields.
class FilterParser {
 public:
  explicit FilterParser(const FilterLimits& limits) : limits_(limits) {}

  // Canonical form: fixed key order, sorted lists, absent keys omitted.
  static void Write(rapidjson::Writer<rapidjson::StringBuffer>& w, const Filter& f) {
    w.StartObject();
    WriteList(w, "event_types", f.event_types_);
    WriteList(w, "session_ids", f.session_ids_);
    WriteList(w, "agent_ids", f.agent_ids_);
    WriteList(w, "tool_names", f.tool_names_);
    WriteList(w, "statuses", f.statuses_);
    WriteList(w, "models", f.models_);
    WriteList(w, "feature_ids", f.feature_ids_);
    if (f.cost_threshold_tokens_) {
      w.Key("cost_threshold_tokens");
      w.Int64(*f.cost_threshold_tokens_);
    }
    if (f.min_duration_ms_) {
      w.Key("min_duration_ms");
      w.Double(*f.min_duration_ms_);
    }
    if (!f.any_.empty()) {
      w.Key("any");
      w.StartArray();
      for (const Filter& sub : f.any_) Write(w, sub);
      w.EndArray();
    }
    w.EndObject();
  }

  Status Parse(const rapidjson::Value& v, const std::string& path, size_t depth, Filter* out) {
    if (!v.IsObject()) {
      return Status::InvalidArgument(
          fmt::format("{}: must be a JSON object, got {}", path, TypeName(v)));
    }
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      std::string_view key(it->name.GetString(), it->name.GetStringLength());
      std::string key_path = path + "." + std::string(key);
      for (auto jt = v.MemberBegin(); jt != it; ++jt) {
        if (key == std::string_view(jt->name.GetString(), jt->name.GetStringLength())) {
          return Status::InvalidArgument(key_path + ": duplicate key");
        }
      }
      TAILBUS_RETURN_IF_ERROR(ParseMember(key, it->value, key_path, depth, out));
    }
    return Status::Ok();
  }

 private:
  Status ParseMember(std::string_view key, const rapidjson::Value& value, const std::string& path,
                     size_t depth, Filter* out) {
    if (key == "event_types") return ParseList(value, path, &out->event_types_);
    if (key == "session_ids") return MergeSessions(value, path, out);
    if (key == "session_id") {
      if (!value.IsString()) {
        return Status::InvalidArgument(
            fmt::format("{}: must be a string, got {}", path, TypeName(value)));
      }
      rapidjson::Value list(rapidjson::kArrayType);
      rapidjson::MemoryPoolAllocator<> alloc;
      list.PushBack(rapidjson::Value(value, alloc), alloc);
      return MergeSessions(list, path, out);
    }
    if (key == "agent_ids") return ParseList(value, path, &out->agent_ids_);
    if (key == "tool_names") return ParseList(value, path, &out->tool_names_);
    if (key == "statuses") return ParseList(value, path, &out->statuses_);
    if (key == "models") return ParseList(value, path, &out->models_);
    if (key == "feature_ids") return ParseList(value, path, &out->feature_ids_);
    if (key == "cost_threshold_tokens") {
      if (!value.IsInt64() || value.GetInt64() < 0) {
        return Status::InvalidArgument(
            fmt::format("{}: must be a non-negative integer, got {}", path, Describe(value)));
      }
      out->cost_threshold_tokens_ = value.GetInt64();
      return Status::Ok();
    }
    if (key == "min_duration_ms") {
      if (!value.IsNumber() || !std::isfinite(value.GetDouble()) || value.GetDouble() < 0) {
        return Status::InvalidArgument(
            fmt::format("{}: must be a non-negative number, got {}", path, Describe(value)));
      }
      out->min_duration_ms_ = value.GetDouble();
      return Status::Ok();
    }
    if (key == "any") return ParseAny(value, path, depth, out);
    return Status::InvalidArgument(fmt::format(
        "{}: unknown key (allowed: event_types, session_ids, session_id, agent_ids, tool_names, "
        "statuses, models, feature_ids, cost_threshold_tokens, min_duration_ms, any)",
        path));
  }

  Status ParseList(const rapidjson::Value& value, const std::string& path, Filter::List* out) {
    if (!value.IsArray()) {
      return Status::InvalidArgument(
          fmt::format("{}: must be an array of strings, got {}", path, TypeName(value)));
    }
    if (value.Size() > limits_.max_values_per_list) {
      return Status::InvalidArgument(fmt::format("{}: has {} values, the limit is {}", path,
                                                 value.Size(), limits_.max_values_per_list));
    }
    std::vector<std::string> list;
    list.reserve(value.Size());
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      const rapidjson::Value& item = value[i];
      if (!item.IsString()) {
        return Status::InvalidArgument(
            fmt::format("{}[{}]: must be a string, got {}", path, i, Describe(item)));
      }
      const std::string_view text(item.GetString(), item.GetStringLength());
      if (!IsValidUtf8(text)) {  // a lone surrogate escape (core/json_numbers.h)
        return Status::InvalidArgument(
            fmt::format("{}[{}]: must be a string of characters (a \\u escape of a lone "
                        "surrogate is not one)",
                        path, i));
      }
      list.emplace_back(text);
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    *out = std::move(list);
    return Status::Ok();
  }

  // `session_id` and `session_ids` may both be given; together they AND.
  Status MergeSessions(const rapidjson::Value& value, const std::string& path, Filter* out) {
    Filter::List parsed;
    TAILBUS_RETURN_IF_ERROR(ParseList(value, path, &parsed));
    if (!out->session_ids_) {
      out->session_ids_ = std::move(parsed);
      return Status::Ok();
    }
    std::vector<std::string> both;
    std::set_intersection(out->session_ids_->begin(), out->session_ids_->end(), parsed->begin(),
                          parsed->end(), std::back_inserter(both));
    out->session_ids_ = std::move(both);
    return Status::Ok();
  }

  Status ParseAny(const rapidjson::Value& value, const std::string& path, size_t depth,
                  Filter* out) {
    if (!value.IsArray()) {
      return Status::InvalidArgument(
          fmt::format("{}: must be an array of filters, got {}", path, TypeName(value)));
    }
    if (value.Empty()) {
      return Status::InvalidArgument(path + ": must not be empty (leave it out to match all)");
    }
    if (value.Size() > limits_.max_any) {
      return Status::InvalidArgument(
          fmt::format("{}: has {} filters, the limit is {}", path, value.Size(), limits_.max_any));
    }
    if (depth >= limits_.max_any_depth) {
      return Status::InvalidArgument(
          fmt::format("{}: nested deeper than {} levels of any", path, limits_.max_any_depth));
    }
    out->any_.clear();
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      Filter sub;
      TAILBUS_RETURN_IF_ERROR(Parse(value[i], fmt::format("{}[{}]", path, i), depth + 1, &sub));
      out->any_.push_back(std::move(sub));
    }
    return Status::Ok();
  }

  const FilterLimits& limits_;
};

Result<Filter> Filter::Parse(std::string_view json, std::string_view path,
                             const FilterLimits& limits) {
  std::string prefix(path.empty() ? "filter" : path);
  if (json.size() > limits.max_json_bytes) {
    return Status::InvalidArgument(fmt::format("{}: is {} bytes, the limit is {}", prefix,
                                               json.size(), limits.max_json_bytes));
  }
  std::string text(json);
  NeutraliseZeroExponents(&text);  // core/json_numbers.h: "0e308" is 0
  // A number RapidJSON would read out of bounds is never parsed (core/json_numbers.h).
  const size_t too_big = FindOverflowingNumber(text);
  rapidjson::Document doc;
  rapidjson::MemoryStream memory(text.data(), std::min(text.size(), too_big));
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(memory);
  const rapidjson::ParseResult parsed = ParseWithExactNumbers<kParseFlags>(doc, stream);
  if (too_big != std::string::npos && (!parsed.IsError() || parsed.Offset() >= too_big)) {
    return Status::InvalidArgument(
        fmt::format("{}: invalid JSON at byte {}: {}", prefix, too_big,
                    rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig)));
  }
  if (parsed.IsError()) {
    return Status::InvalidArgument(fmt::format("{}: invalid JSON at byte {}: {}", prefix,
                                               parsed.Offset(),
                                               rapidjson::GetParseError_En(parsed.Code())));
  }
  Filter filter;
  FilterParser parser(limits);
  TAILBUS_RETURN_IF_ERROR(parser.Parse(doc, prefix, 0, &filter));
  return filter;
}

bool Filter::Matches(const EventFields& e) const noexcept {
  if (!ListMatches(event_types_, e.event_type) || !ListMatches(session_ids_, e.session_id) ||
      !ListMatches(tool_names_, e.tool_name) || !ListMatches(statuses_, e.status) ||
      !ListMatches(models_, e.model) || !ListMatches(agent_ids_, e.agent_id) ||
      !ListMatches(feature_ids_, e.feature_id)) {
    return false;
  }
  if (cost_threshold_tokens_ && !(e.cost_tokens && *e.cost_tokens > *cost_threshold_tokens_)) {
    return false;
  }
  if (min_duration_ms_ && !(e.duration_ms && *e.duration_ms >= *min_duration_ms_)) return false;
  if (any_.empty()) return true;
  return std::any_of(any_.begin(), any_.end(), [&](const Filter& f) { return f.Matches(e); });
}

bool Filter::MatchesEverything() const {
  return !event_types_ && !session_ids_ && !agent_ids_ && !tool_names_ && !statuses_ && !models_ &&
         !feature_ids_ && !cost_threshold_tokens_ && !min_duration_ms_ && any_.empty();
}

const std::vector<std::string>& Filter::session_ids() const {
  static const std::vector<std::string> kNone;
  return session_ids_ ? *session_ids_ : kNone;
}

Filter Filter::RestrictedToSession(std::string_view session_id) const {
  Filter out = *this;
  if (!session_ids_ || Contains(*session_ids_, session_id)) {
    out.session_ids_ = std::vector<std::string>{std::string(session_id)};
  } else {
    out.session_ids_ = std::vector<std::string>{};  // no session can satisfy both
  }
  return out;
}

std::string Filter::ToJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  FilterParser::Write(writer, *this);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace tailbus
