// Fuzz target: the capture spool reader and the spool -> trace conversion (`cdma capture
// --convert`) on arbitrary bytes. Every input ends in a CaptureError / TraceError or in a trace
// that reads back with as many tensors as the conversion reported; never a crash, a hang, an
// allocation beyond the input's size, or a sanitizer report. The reader takes a path, so each
// input is written to a file in a private temporary folder first.
// Seeds: corpus/spool_reader (spools of the fake-cuDNN programs: full, in-situ, timeline).
#include <cdma/capture/collector.hpp>
#include <cdma/formats/trace.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    char tmpl[] = "/tmp/cdma-fuzz-spool-XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    std::filesystem::path p = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(work_dir(), ec);
    });
    return p;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cdma;
  const auto spool = work_dir() / "cdma-1.spool";
  const auto trace = work_dir() / "trace.h5";
  {
    std::FILE* f = std::fopen(spool.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  // The reader alone: every record it returns is checked; its payload never exceeds the file.
  try {
    capture::SpoolReader r(spool);
    capture::SpoolRecord rec;
    while (r.next(rec, true)) {
      if (rec.payload.size() > size) std::abort();
      (void)capture::check_record(rec);
    }
  } catch (const formats::Error&) {
  }
  // The conversion, and the trace it wrote read back.
  std::error_code ec;
  std::filesystem::remove(trace, ec);
  try {
    auto sum = capture::convert_spool(spool, trace, capture::ConvertOptions{});
    formats::ReaderOptions ro;
    ro.isolate = false;  // our own writer's file
    formats::TraceReader tr(trace, ro);
    if (static_cast<std::int64_t>(tr.tensors().size()) != sum.tensors || !tr.attrs().complete) std::abort();
    for (const auto& m : tr.tensors())
      if (!m.offload.has_value() && sum.offload_unknown == 0) std::abort();
  } catch (const formats::Error&) {
    // A refused spool leaves no trace behind.
    if (std::filesystem::exists(trace)) std::abort();
  }
  return 0;
}
