// cdma._native codec functions: the formats codec registry (make_codec) on Python buffers,
// without copying the input and with the GIL released while a codec runs.
#include "native.hpp"

#include <cdma/formats/codec.hpp>

#include <fmt/format.h>

#include <vector>

namespace cdma::python {

namespace {

// A read-only view of a C-contiguous buffer (bytes, bytearray, memoryview, numpy array).
struct View {
  py::buffer_info info;
  std::span<const std::byte> bytes;
};

View view_of(const py::buffer& b, const char* what) {
  View v{b.request(), {}};
  py::ssize_t stride = v.info.itemsize;
  for (py::ssize_t k = v.info.ndim - 1; k >= 0; --k) {
    if (v.info.shape[k] != 1 && v.info.strides[k] != stride)
      throw formats::UsageError(
          fmt::format("{}: the buffer is not C-contiguous (numpy.ascontiguousarray makes one)", what));
    stride *= v.info.shape[k];
  }
  v.bytes = {static_cast<const std::byte*>(v.info.ptr), static_cast<std::size_t>(v.info.size * v.info.itemsize)};
  return v;
}

void check_width(std::size_t bytes, int width, const char* what) {
  if (width != 1 && width != 2 && width != 4)
    throw formats::UsageError(fmt::format("{}: element width {} (1, 2 or 4 bytes)", what, width));
  if (bytes % static_cast<std::size_t>(width) != 0)
    throw formats::UsageError(
        fmt::format("{}: {} bytes are not a whole number of {}-byte elements", what, bytes, width));
}

py::bytes encode(const std::string& spec, const py::buffer& data, int width) {
  const auto codec = formats::make_codec(spec);
  const View v = view_of(data, "cdma.codecs.encode");
  check_width(v.bytes.size(), width, "cdma.codecs.encode");
  std::vector<std::byte> out;
  std::size_t n = 0;
  {
    py::gil_scoped_release release;
    out.resize(codec->max_encoded_size(v.bytes.size(), static_cast<std::size_t>(width)));
    n = codec->encode(v.bytes, static_cast<std::size_t>(width), out);
  }
  return py::bytes(reinterpret_cast<const char*>(out.data()), static_cast<py::ssize_t>(n));
}

void decode_into(const std::string& spec, const py::buffer& data, int width, const py::buffer& out) {
  const auto codec = formats::make_codec(spec);
  const View in = view_of(data, "cdma.codecs.decode");
  py::buffer_info o = out.request(true);
  if (o.ndim != 1 || o.strides[0] != o.itemsize)
    throw formats::UsageError("cdma.codecs.decode: the output buffer is not a contiguous 1-D array");
  const std::span<std::byte> dst(static_cast<std::byte*>(o.ptr), static_cast<std::size_t>(o.size * o.itemsize));
  check_width(dst.size(), width, "cdma.codecs.decode");
  py::gil_scoped_release release;
  codec->decode(in.bytes, static_cast<std::size_t>(width), dst);
}

std::size_t size(const std::string& spec, const py::buffer& data, int width, std::size_t chunk) {
  const auto codec = formats::make_codec(spec);
  const View v = view_of(data, "cdma.codecs.size");
  check_width(v.bytes.size(), width, "cdma.codecs.size");
  py::gil_scoped_release release;
  return chunk ? formats::chunked_compressed_size(*codec, v.bytes, static_cast<std::size_t>(width), chunk)
               : codec->compressed_size(v.bytes, static_cast<std::size_t>(width));
}

}  // namespace

void bind_codecs(py::module_& m) {
  m.def("codec_encode", &encode, py::arg("codec"), py::arg("data"), py::arg("width"));
  m.def("codec_decode_into", &decode_into, py::arg("codec"), py::arg("data"), py::arg("width"), py::arg("out"));
  m.def("codec_size", &size, py::arg("codec"), py::arg("data"), py::arg("width"), py::arg("chunk") = 0);
  m.def("codec_name", [](const std::string& spec) { return formats::make_codec(spec)->name(); });
  m.def("codec_families", &formats::codec_families);
  m.def("default_codecs", &formats::default_codecs);
  m.def("codec_help", &formats::codec_help);
}

}  // namespace cdma::python
