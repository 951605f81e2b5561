// Reading the hardware model's JSON data files (presets, zoo networks): one place for opening,
// parsing and the schema check, so that every file gives the same errors.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace cdma::hwmodel::detail {

// A path for messages: what the user gave, as clean text (formats::clean_text).
std::string shown(const std::filesystem::path& p);

// Parses the JSON of a regular file (a FIFO or a device would block the open or never end). `kind`
// names the file in messages ("preset", "zoo"). Throws ModelError naming the file.
nlohmann::json read_json_file(const std::filesystem::path& p, const char* kind);

// `schema` must be `name` and `schema_version` the version these loaders know (1). Throws
// ModelError "<file>: ..." saying what was expected.
void check_schema(const std::filesystem::path& file, const nlohmann::json& root, const char* name);

}  // namespace cdma::hwmodel::detail
