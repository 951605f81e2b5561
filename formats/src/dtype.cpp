#include <cdma/formats/dtype.hpp>
#include <cdma/formats/error.hpp>

#include <array>
#include <utility>

namespace cdma::formats {

namespace {
constexpr std::array<std::pair<DType, std::string_view>, 5> kDTypes{{{DType::f32, "float32"},
                                                                     {DType::f16, "float16"},
                                                                     {DType::bf16, "bfloat16"},
                                                                     {DType::i8, "int8"},
                                                                     {DType::u8, "uint8"}}};
constexpr std::array<std::pair<Layout, std::string_view>, 4> kLayouts{
    {{Layout::NCHW, "NCHW"}, {Layout::NHWC, "NHWC"}, {Layout::CHWN, "CHWN"}, {Layout::NC, "NC"}}};
}  // namespace

std::string_view to_string(DType t) noexcept {
  for (auto& [k, v] : kDTypes)
    if (k == t) return v;
  return "?";
}
std::optional<DType> parse_dtype(std::string_view s) noexcept {
  for (auto& [k, v] : kDTypes)
    if (v == s) return k;
  return std::nullopt;
}
std::string_view to_string(Layout l) noexcept {
  for (auto& [k, v] : kLayouts)
    if (k == l) return v;
  return "?";
}
std::optional<Layout> parse_layout(std::string_view s) noexcept {
  for (auto& [k, v] : kLayouts)
    if (v == s) return k;
  return std::nullopt;
}

TraceError::TraceError(std::string file, std::string object, const std::string& what)
    : Error(what), file_(std::move(file)), object_(std::move(object)) {}

}  // namespace cdma::formats
