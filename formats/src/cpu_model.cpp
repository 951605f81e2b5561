#include <cdma/formats/simd.hpp>
#include <cdma/formats/text.hpp>

#include <fstream>

namespace cdma::formats {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto first = line.find_first_not_of(" \t", colon + 1);
    return first == std::string::npos ? "unknown CPU" : clean_text(line.substr(first));
  }
  return "unknown CPU";
}

}  // namespace cdma::formats
