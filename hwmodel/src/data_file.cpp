#include "data_file.hpp"

#include <cdma/formats/text.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <fmt/core.h>

#include <fstream>

namespace cdma::hwmodel::detail {

using nlohmann::json;

std::string shown(const std::filesystem::path& p) { return formats::clean_text(p.string()); }

json read_json_file(const std::filesystem::path& p, const char* kind) {
  std::error_code ec;
  const auto st = std::filesystem::status(p, ec);
  if (ec || !std::filesystem::exists(st)) throw ModelError(fmt::format("cannot open {} file {}", kind, shown(p)));
  if (!std::filesystem::is_regular_file(st))
    throw ModelError(fmt::format("{} file {} is not a regular file", kind, shown(p)));
  std::ifstream in(p, std::ios::binary);
  if (!in) throw ModelError(fmt::format("cannot open {} file {}", kind, shown(p)));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw ModelError(fmt::format("{}: not valid JSON ({})", shown(p), e.what()));
  }
}

void check_schema(const std::filesystem::path& file, const json& root, const char* name) {
  auto fail = [&](const std::string& what) { throw ModelError(shown(file) + ": " + what); };
  if (!root.is_object()) fail("expected a JSON object");
  if (!root.contains("schema") || !root["schema"].is_string()) fail(fmt::format("needs \"schema\": \"{}\"", name));
  if (root["schema"].get<std::string>() != name)
    fail(fmt::format("schema is '{}', expected '{}'", formats::clean_text(root["schema"].get<std::string>()), name));
  if (!root.contains("schema_version") || !root["schema_version"].is_number_integer())
    fail("needs an integer \"schema_version\" (1)");
  const json& v = root["schema_version"];
  if (v.is_number_unsigned() ? v.get<std::uint64_t>() != 1 : v.get<std::int64_t>() != 1) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > 1)
      fail("schema_version " + v.dump() + " is newer than this cdma supports (1); update cdma");
    fail("schema_version " + v.dump() + " is invalid (expected 1)");
  }
}

}  // namespace cdma::hwmodel::detail
