// Network helpers and the transfer-time rounding shared by both replays.
#include <cdma/hwmodel/network.hpp>
#include <cdma/hwmodel/presets.hpp>

#include <fmt/core.h>

#include <cmath>
#include <limits>

namespace cdma::hwmodel {

Ps transfer_ps(double bytes, double bytes_per_s) {
  if (!(bytes_per_s > 0)) throw ModelError(fmt::format("bandwidth must be > 0 bytes/s, got {}", bytes_per_s));
  if (bytes <= 0 || std::isinf(bytes_per_s)) return 0;
  // long double keeps bytes x 1e12 exact for any realistic byte count, so the ceiling is exact
  // enough that one more byte at <= 1 TB/s always costs at least one more picosecond.
  long double t = std::ceil(static_cast<long double>(bytes) * 1e12L / static_cast<long double>(bytes_per_s));
  if (t > static_cast<long double>(std::numeric_limits<Ps>::max() / 4))
    throw ModelError(fmt::format("transfer of {} bytes at {} B/s is too long to model", bytes, bytes_per_s));
  return static_cast<Ps>(t);
}

Ps Network::oracle_ps() const {
  Ps t = 0;
  for (const auto& l : layers) t += l.fwd_ps + l.bwd_ps;
  return t;
}

void Network::set_ratio(const std::string& codec, double ratio) {
  if (!(ratio > 0) || !std::isfinite(ratio))
    throw ModelError(fmt::format("compression ratio must be a finite number > 0, got {}", ratio));
  for (auto& l : layers)
    if (l.x_tensor >= 0) l.ratio[codec] = ratio;
}

void Network::set_density(double density, int element_bytes) {
  if (!(density >= 0 && density <= 1)) throw ModelError(fmt::format("density must be in [0, 1], got {}", density));
  for (auto& l : layers)
    if (l.x_tensor >= 0) l.ratio["zvc"] = zvc_ratio(l.x_sparse ? density : 1.0, element_bytes);
}

double zvc_ratio(double density, int element_bytes) {
  const double bits = 8.0 * element_bytes;
  return bits / (1.0 + bits * density);
}

}  // namespace cdma::hwmodel
