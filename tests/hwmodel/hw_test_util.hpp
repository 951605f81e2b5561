// Helpers shared by the hardware-model tests.
#pragma once

#include <cdma/hwmodel/network.hpp>

#include <cstdint>
#include <string>
#include <utility>

namespace cdma::hwmodel::test {

// A layer with the fields the timing model reads.
inline Layer mk(std::string name, std::string op, Ps f, Ps b, int tensor, std::int64_t bytes) {
  Layer l;
  l.name = std::move(name);
  l.op = std::move(op);
  l.fwd_ps = f;
  l.bwd_ps = b;
  l.x_tensor = tensor;
  l.x_bytes = bytes;
  return l;
}

}  // namespace cdma::hwmodel::test
