// The network a replay runs: layers in forward order with their compute times and the tensors
// their backward pass needs (what vDNN offloads). docs/spec/HWMODEL.md "Inputs".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cdma::hwmodel {

// Model time is integer picoseconds, so timing edges are exact (a transfer that fills the compute
// window exactly causes no stall; one byte more does).
using Ps = std::int64_t;
inline constexpr Ps kPsPerSecond = 1'000'000'000'000;

// Time to move `bytes` at `bytes_per_s`, rounded up to a whole picosecond. 0 when bytes == 0;
// 0 when bytes_per_s is infinite. Throws ModelError when bytes_per_s <= 0 or NaN.
Ps transfer_ps(double bytes, double bytes_per_s);

struct Layer {
  std::string name;
  std::string op;  // trace-format op names: conv, linear, relu, pool, bn, lrn, dropout, add, concat, softmax, other
  Ps fwd_ps = 0;   // forward compute time F
  Ps bwd_ps = 0;   // backward compute time B
  // The activation tensor this layer's backward needs (its input X), or -1 when it needs none
  // (add, concat). Several layers may share one tensor (inception and fire modules, residual
  // shortcuts): it is offloaded once, at its first consumer's forward, and must be back before
  // its last consumer's backward.
  int x_tensor = -1;
  std::int64_t x_bytes = 0;  // uncompressed bytes of that tensor per iteration (U)
  bool x_sparse = true;      // the tensor can hold ReLU zeros (zoo: downstream of a ReLU); --density applies to it
  // Compression ratio of the tensor per codec ("zvc", "zrle-4", "zlib-6", ...); a codec missing
  // here is treated as ratio 1. Only the tensor's first consumer's map is used.
  std::map<std::string, double> ratio;
  // Informational (zoo/roofline): work and DRAM traffic of the forward pass.
  double flops = 0;
  double dram_bytes = 0;
  std::vector<std::int64_t> out_shape;  // per-sample output shape (C, H, W) or (F), zoo only
};

struct Network {
  std::string name;
  std::string source;  // "zoo", or the trace path
  int batch = 0;
  std::vector<Layer> layers;
  int input_tensor = -1;  // the network input: never offloaded (docs/spec/HWMODEL.md policy)

  Ps oracle_ps() const;  // sum of F and B
  // Sets `codec`'s ratio on every layer's tensor. Throws ModelError when ratio <= 0 or NaN.
  void set_ratio(const std::string& codec, double ratio);
  // Sets the ZVC ratio ("zvc") from a density: zvc_ratio(density) on tensors with x_sparse,
  // zvc_ratio(1) (dense) on the others. Throws ModelError when density is outside [0, 1].
  void set_density(double density, int element_bytes = 4);
};

// fp32 ZVC ratio at density d (docs/spec/CODECS.md): 32 / (1 + 32 d); for w-byte elements 8w / (1 + 8w d).
double zvc_ratio(double density, int element_bytes = 4);

}  // namespace cdma::hwmodel
