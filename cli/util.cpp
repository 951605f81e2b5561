#include "util.hpp"

#include <cdma/formats/error.hpp>

#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace cdma::cli {

void write_output(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw formats::Error("cannot create " + tmp + " (writing " + path + ")");
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.close();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw formats::Error("cannot write " + tmp + " (writing " + path + "; disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw formats::Error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
}

}  // namespace cdma::cli
