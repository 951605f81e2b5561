// Fuzz target: arbitrary bytes as a trace file. The reader must either accept the file or throw
// cdma::formats::Error; reading every accepted tensor, the timeline and the stats must do the same.
#include <cdma/formats/trace.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp ? tmp : "/tmp") + "/cdma-fuzz-trace-" + std::to_string(getpid()) + ".h5";
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  if (size > 0 && std::fwrite(data, 1, size, f) != size) {
    std::fclose(f);
    return 0;
  }
  std::fclose(f);
  try {
    // HDF5 1.10 loops forever on some damaged global heaps (a mutated h5py trace does it reading
    // a vlen attribute); the probe turns that into an error after its timeout, kept short here.
    cdma::formats::ReaderOptions ro;
    ro.probe_timeout_s = 5;
    ro.skip_bad_tensors = (size & 1) != 0;  // both modes of the reader
    cdma::formats::TraceReader r(path, ro);
    for (const auto& t : r.tensors()) {
      if (t.bytes() > (64 << 20)) continue;  // a fuzzed header may claim huge dims; don't allocate them
      try {
        auto bytes = r.read(t);
        if (static_cast<std::int64_t>(bytes.size()) != t.bytes()) std::abort();
      } catch (const cdma::formats::Error&) {
      }
    }
    try {
      (void)r.timeline();
      (void)r.stats();
    } catch (const cdma::formats::Error&) {
    }
  } catch (const cdma::formats::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
