// The codec registry: ZVC, ZRLE-k, the byte codecs (zlib, zstd, lz4), BPC and EBPC behind Codec.
// A new codec is one class and one line in codec_table().
#include <cdma/formats/bpc.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/expzstd.hpp>
#include <cdma/formats/zero_scan.hpp>
#include <cdma/formats/zrle.hpp>
#include <cdma/formats/zvc.hpp>

#include "codec_internal.hpp"

#include <fmt/format.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>
#include <charconv>

namespace cdma::formats {

using detail::codec_fail;

namespace {
// Per-thread scratch output for sizes that need an encode (kept between calls: analysing many
// tensors must not map and fault in a fresh buffer each time).
std::span<std::byte> scratch(std::size_t bytes) {
  thread_local std::vector<std::byte> buf;
  if (buf.size() < bytes) buf.resize(bytes);
  return {buf.data(), bytes};
}
}  // namespace

std::size_t Codec::compressed_size(std::span<const std::byte> in, std::size_t width) const {
  return encode(in, width, scratch(max_encoded_size(in.size(), width)));
}

namespace {

class ZvcCodec final : public Codec {
 public:
  std::string name() const override { return "zvc"; }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t width) const override {
    return zvc_max_encoded_size(bytes, width);
  }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    return zvc_encode(in, width, out);
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    zvc_decode(in, width, out);
  }
  std::size_t compressed_size(std::span<const std::byte> in, std::size_t width) const override {
    detail::check_width(in.size(), width, "zvc");
    return zvc_size(in.size() / width, count_nonzeros(in, width), width);
  }
  bool size_from_counts() const override { return true; }
};

class ZrleCodec final : public Codec {
 public:
  explicit ZrleCodec(int k) : k_(k) {}
  std::string name() const override { return fmt::format("zrle-{}", k_); }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t width) const override {
    return zrle_max_encoded_size(bytes, width);
  }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    return zrle_encode(in, width, k_, out);
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    zrle_decode(in, width, k_, out);
  }
  std::size_t compressed_size(std::span<const std::byte> in, std::size_t width) const override {
    return zrle_size(zero_scan(in, width), width, k_);
  }
  bool size_from_counts() const override { return true; }

 private:
  int k_;
};

class ZlibCodec final : public Codec {
 public:
  explicit ZlibCodec(int level) : level_(level) {}
  std::string name() const override { return fmt::format("zlib-{}", level_); }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t) const override {
    return compressBound(static_cast<uLong>(bytes));
  }
  // What compress2() does (deflateInit at the level, deflate with Z_FINISH), with one deflate state
  // per thread and level kept between calls: compress2 allocates and clears about 256 KiB of state
  // each time, which dominated the analysis of many small tensors. Same bytes (tested against
  // compress2 in tests/codecs).
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    detail::check_width(in.size(), width, "zlib encode");
    struct Stream {
      z_stream z{};
      int level = -2;
      ~Stream() {
        if (level != -2) deflateEnd(&z);
      }
    };
    thread_local Stream st;
    if (st.level != level_) {
      if (st.level != -2) deflateEnd(&st.z);
      st.z = z_stream{};
      st.level = -2;
      if (deflateInit(&st.z, level_) != Z_OK) codec_fail("zlib encode: deflateInit failed");
      st.level = level_;
    } else if (deflateReset(&st.z) != Z_OK) {
      codec_fail("zlib encode: deflateReset failed");
    }
    // zlib counts in uInt: feed and drain in pieces of at most 1 GiB.
    constexpr std::size_t kPiece = std::size_t{1} << 30;
    std::size_t in_off = 0, out_off = 0;
    int rc = Z_OK;
    do {
      const std::size_t in_n = std::min(kPiece, in.size() - in_off);
      const std::size_t out_n = std::min(kPiece, out.size() - out_off);
      st.z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(in.data() + in_off));
      st.z.avail_in = static_cast<uInt>(in_n);
      st.z.next_out = reinterpret_cast<Bytef*>(out.data() + out_off);
      st.z.avail_out = static_cast<uInt>(out_n);
      const bool last = in_off + in_n == in.size();
      rc = deflate(&st.z, last ? Z_FINISH : Z_NO_FLUSH);
      in_off += in_n - st.z.avail_in;
      out_off += out_n - st.z.avail_out;
      if (rc == Z_STREAM_ERROR || (rc == Z_BUF_ERROR && out_off == out.size()))
        codec_fail(fmt::format("zlib encode: deflate failed ({})", rc));
    } while (rc != Z_STREAM_END);
    return out_off;
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    detail::check_width(out.size(), width, "zlib decode");
    uLongf len = static_cast<uLongf>(out.size());
    uLong src_len = static_cast<uLong>(in.size());
    // An empty destination makes zlib write nowhere; give it a dummy byte it may not use.
    Bytef dummy = 0;
    Bytef* dst = out.empty() ? &dummy : reinterpret_cast<Bytef*>(out.data());
    const int rc = uncompress2(dst, &len, reinterpret_cast<const Bytef*>(in.data()), &src_len);
    if (rc == Z_BUF_ERROR && src_len == in.size() && len == out.size())
      codec_fail(fmt::format("zlib decode: stream of {} bytes is truncated", in.size()));
    if (rc != Z_OK)
      codec_fail(fmt::format("zlib decode: malformed stream ({}) for {} output bytes", zError(rc), out.size()));
    if (len != out.size())
      codec_fail(fmt::format("zlib decode: stream decodes to {} bytes, expected {}", len, out.size()));
    if (src_len != in.size())
      codec_fail(fmt::format("zlib decode: {} trailing bytes after the zlib stream", in.size() - src_len));
  }

 private:
  int level_;
};

class ZstdCodec final : public Codec {
 public:
  explicit ZstdCodec(int level) : level_(level) {}
  std::string name() const override { return fmt::format("zstd-{}", level_); }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t) const override { return ZSTD_compressBound(bytes); }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    detail::check_width(in.size(), width, "zstd encode");
    // ZSTD_compress() with a context kept per thread (ZSTD_compress creates and frees one per call).
    struct Ctx {
      ZSTD_CCtx* c = ZSTD_createCCtx();
      ~Ctx() { ZSTD_freeCCtx(c); }
    };
    thread_local Ctx ctx;
    if (!ctx.c) codec_fail("zstd encode: cannot create a context");
    const std::size_t r = ZSTD_compressCCtx(ctx.c, out.data(), out.size(), in.data(), in.size(), level_);
    if (ZSTD_isError(r)) codec_fail(fmt::format("zstd encode: {}", ZSTD_getErrorName(r)));
    return r;
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    detail::check_width(out.size(), width, "zstd decode");
    // Exactly one frame, covering the whole input.
    const std::size_t frame = ZSTD_findFrameCompressedSize(in.data(), in.size());
    if (ZSTD_isError(frame)) codec_fail(fmt::format("zstd decode: malformed stream: {}", ZSTD_getErrorName(frame)));
    if (frame != in.size())
      codec_fail(fmt::format("zstd decode: {} trailing bytes after the zstd frame", in.size() - frame));
    const std::size_t r = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
    if (ZSTD_isError(r)) codec_fail(fmt::format("zstd decode: malformed stream: {}", ZSTD_getErrorName(r)));
    if (r != out.size()) codec_fail(fmt::format("zstd decode: stream decodes to {} bytes, expected {}", r, out.size()));
  }

 private:
  int level_;
};

class Lz4Codec final : public Codec {
 public:
  std::string name() const override { return "lz4"; }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t) const override {
    if (bytes > LZ4_MAX_INPUT_SIZE) return bytes + bytes / 255 + 16;
    return static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(bytes)));
  }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    detail::check_width(in.size(), width, "lz4 encode");
    if (in.size() > LZ4_MAX_INPUT_SIZE)
      codec_fail(
          fmt::format("lz4 encode: {} bytes exceed LZ4's block limit of {} bytes; use "
                      "chunks",
                      in.size(), LZ4_MAX_INPUT_SIZE));
    const int cap = static_cast<int>(std::min<std::size_t>(out.size(), 0x7fffffff));
    const int r = LZ4_compress_default(reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data()),
                                       static_cast<int>(in.size()), cap);
    if (r <= 0) codec_fail("lz4 encode: output buffer too small");
    return static_cast<std::size_t>(r);
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    detail::check_width(out.size(), width, "lz4 decode");
    if (in.size() > 0x7fffffff || out.size() > 0x7fffffff) codec_fail("lz4 decode: block larger than 2 GiB");
    char dummy = 0;
    char* dst = out.empty() ? &dummy : reinterpret_cast<char*>(out.data());
    const int r = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()), dst, static_cast<int>(in.size()),
                                      static_cast<int>(out.size()));
    if (r < 0)
      codec_fail(fmt::format("lz4 decode: malformed block of {} bytes for {} output bytes", in.size(), out.size()));
    if (static_cast<std::size_t>(r) != out.size())
      codec_fail(fmt::format("lz4 decode: block decodes to {} bytes, expected {}", r, out.size()));
  }
};

class BpcCodec final : public Codec {
 public:
  std::string name() const override { return "bpc"; }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t width) const override {
    return bpc_max_encoded_size(bytes, width);
  }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    return bpc_encode(in, width, out);
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    bpc_decode(in, width, out);
  }
  std::size_t compressed_size(std::span<const std::byte> in, std::size_t width) const override {
    return static_cast<std::size_t>((bpc_bits(in, width) + 7) / 8);
  }
};

class EbpcCodec final : public Codec {
 public:
  std::string name() const override { return "ebpc"; }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t width) const override {
    return ebpc_max_encoded_size(bytes, width);
  }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    return ebpc_encode(in, width, out);
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    ebpc_decode(in, width, out);
  }
  std::size_t compressed_size(std::span<const std::byte> in, std::size_t width) const override {
    return static_cast<std::size_t>((ebpc_bits(in, width) + 7) / 8);
  }
};

// expzstd: zero mask, byte planes, one zstd frame or raw bytes per plane (expzstd.hpp).
class ExpZstdCodec final : public Codec {
 public:
  std::string name() const override { return "expzstd"; }
  std::size_t max_encoded_size(std::size_t bytes, std::size_t width) const override {
    return expzstd_max_encoded_size(bytes, width);
  }
  std::size_t encode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    return expzstd_encode(in, width, out);
  }
  void decode(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) const override {
    expzstd_decode(in, width, out);
  }
};

// "name" or "name-P" -> parameter P (or the default) in [lo, hi].
std::optional<int> parse_param(std::string_view spec, std::string_view family, int dflt, int lo, int hi) {
  if (spec == family) return dflt;
  if (spec.size() <= family.size() + 1 || spec.substr(0, family.size()) != family || spec[family.size()] != '-')
    return std::nullopt;
  const std::string_view num = spec.substr(family.size() + 1);
  int v = 0;
  const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (ec != std::errc{} || ptr != num.data() + num.size() || v < lo || v > hi)
    codec_fail(fmt::format("codec '{}': parameter must be an integer in {}..{}", spec, lo, hi));
  return v;
}

}  // namespace

namespace {
template <class C>
std::unique_ptr<Codec> make_plain(int) {
  return std::make_unique<C>();
}
template <class C>
std::unique_ptr<Codec> make_with(int p) {
  return std::make_unique<C>(p);
}
}  // namespace

const std::vector<CodecFamily>& codec_table() {
  // A new codec is one class above and one line here.
  static const std::vector<CodecFamily> table{
      CodecFamily{"zvc", 0, 0, 0, 0, &make_plain<ZvcCodec>},
      CodecFamily{"zrle", 'K', kZrleMinK, kZrleMaxK, 4, &make_with<ZrleCodec>},
      CodecFamily{"zlib", 'L', 0, 9, 6, &make_with<ZlibCodec>},
      CodecFamily{"zstd", 'L', 1, ZSTD_maxCLevel(), 1, &make_with<ZstdCodec>},
      CodecFamily{"lz4", 0, 0, 0, 0, &make_plain<Lz4Codec>},
      CodecFamily{"bpc", 0, 0, 0, 0, &make_plain<BpcCodec>, false},
      CodecFamily{"ebpc", 0, 0, 0, 0, &make_plain<EbpcCodec>, false},
      CodecFamily{"expzstd", 0, 0, 0, 0, &make_plain<ExpZstdCodec>, false},
  };
  return table;
}

std::string CodecFamily::default_spec() const { return param ? fmt::format("{}-{}", name, dflt) : name; }

std::unique_ptr<Codec> make_codec(std::string_view spec) {
  for (const auto& f : codec_table()) {
    if (!f.param) {
      if (spec == f.name) return f.make(0);
    } else if (auto p = parse_param(spec, f.name, f.dflt, f.min, f.max)) {
      return f.make(*p);
    }
  }
  codec_fail(fmt::format("unknown codec '{}'; expected one of: {}", spec, codec_help()));
}

std::vector<std::string> codec_families() {
  std::vector<std::string> out;
  for (const auto& f : codec_table()) out.push_back(f.name);
  return out;
}

std::vector<std::string> default_codecs() {
  std::vector<std::string> out;
  for (const auto& f : codec_table())
    if (f.in_defaults) out.push_back(f.default_spec());
  return out;
}

std::string codec_help() {
  std::string out;
  for (const auto& f : codec_table()) {
    if (!out.empty()) out += ", ";
    out += f.param ? fmt::format("{}[-{}] ({} {}..{}, default {})", f.name, f.param, f.param, f.min, f.max, f.dflt)
                   : f.name;
  }
  return out;
}

std::size_t chunked_compressed_size(const Codec& codec, std::span<const std::byte> in, std::size_t width,
                                    std::size_t chunk_bytes) {
  detail::check_width(in.size(), width, "chunked_compressed_size");
  if (chunk_bytes == 0 || chunk_bytes >= in.size()) return codec.compressed_size(in, width);
  const std::size_t step = std::max(width, chunk_bytes / width * width);
  std::size_t total = 0;
  for (std::size_t off = 0; off < in.size(); off += step)
    total += codec.compressed_size(in.subspan(off, std::min(step, in.size() - off)), width);
  return total;
}

}  // namespace cdma::formats
