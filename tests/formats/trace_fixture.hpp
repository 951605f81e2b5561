#pragma once

#include <cdma/formats/trace.hpp>

#include <cstring>
#include <random>
#include <vector>

namespace cdma::test {

inline std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  // Sprinkle zeros so the data looks like activations.
  for (std::size_t i = 0; i < n; i += 3) v[i] = std::byte{0};
  return v;
}

inline formats::TensorMeta make_meta(formats::DType dt, formats::Layout lay, std::int64_t iter, int idx) {
  formats::TensorMeta m;
  m.iteration = iter;
  m.layer = "layer" + std::to_string(idx);
  m.layer_index = idx;
  m.op = idx % 2 ? "relu" : "conv";
  m.role = "x";
  m.phase = "forward";
  m.layout = lay;
  m.dtype = dt;
  m.dims = lay == formats::Layout::NC ? std::vector<std::int64_t>{3, 17} : std::vector<std::int64_t>{2, 3, 5, 7};
  m.call = 100 + idx;
  return m;
}

inline formats::TraceAttrs test_attrs() {
  formats::TraceAttrs a;
  a.producer = "cdma-test 0";
  a.source = "synthetic";
  a.model = "unit";
  return a;
}

}  // namespace cdma::test
