// A transparent hash for std::string-keyed unordered containers, so lookups by
// std::string_view (with std::equal_to<>) need no temporary string:
//   std::unordered_map<std::string, V, StringHash, std::equal_to<>>
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace tailbus {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace tailbus
