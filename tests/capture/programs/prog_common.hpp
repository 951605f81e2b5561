// Shared by the programs that drive the fake cuDNN under the interposer: device buffers (fake
// driver), a deterministic activation generator, and the "expected" file in which a program
// records the exact bytes it passed as each layer's X, for the tests to compare with the trace.
//
// Expected file: records of  u32 name_len | name | i64 iteration | u64 nbytes | bytes.
#pragma once

#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace prog {

inline void* dalloc(std::size_t bytes) {
  CUdeviceptr p = 0;
  if (cuMemAlloc(&p, bytes) != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuMemAlloc failed\n");
    std::exit(10);
  }
  return reinterpret_cast<void*>(p);
}

inline std::vector<unsigned char> read_back(const void* d, std::size_t bytes) {
  std::vector<unsigned char> v(bytes);
  cuMemcpyDtoH(v.data(), reinterpret_cast<CUdeviceptr>(d), bytes);
  return v;
}

// Post-ReLU-like activations: about half zeros, in runs; values depend on seed and index.
inline void fill(void* d, std::size_t elements, std::uint64_t seed) {
  std::vector<float> h(elements);
  std::uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (std::size_t i = 0; i < elements; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    float v = static_cast<float>(s % 1000) / 250.0f - 2.0f;  // [-2, 2)
    h[i] = ((i / 3) % 2 == 0 && v < 0) ? 0.0f : v;
  }
  cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(d), h.data(), elements * sizeof(float));
}

class Expected {
 public:
  explicit Expected(const char* path) : f_(path ? std::fopen(path, "wb") : nullptr) {}
  ~Expected() {
    if (f_) std::fclose(f_);
  }
  void add(const std::string& name, std::int64_t iteration, const std::vector<unsigned char>& bytes) {
    if (!f_) return;
    std::uint32_t n = static_cast<std::uint32_t>(name.size());
    std::uint64_t nb = bytes.size();
    std::fwrite(&n, 4, 1, f_);
    std::fwrite(name.data(), 1, n, f_);
    std::fwrite(&iteration, 8, 1, f_);
    std::fwrite(&nb, 8, 1, f_);
    std::fwrite(bytes.data(), 1, bytes.size(), f_);
    std::fflush(f_);
  }

 private:
  std::FILE* f_;
};

// Calls cdma_capture_mark_iteration() when the interposer is loaded (as a Python script would
// through ctypes); a no-op otherwise.
inline void mark_iteration() {
  using Fn = void (*)();
  static Fn fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "cdma_capture_mark_iteration"));
  if (fn) fn();
}

inline const char* arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}
inline bool flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

}  // namespace prog
