#include <cdma/capture/collector.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cdma::capture {

namespace {
std::string sys_error() { return std::strerror(errno); }
}  // namespace

SpoolReader::SpoolReader(const std::filesystem::path& path) : path_(path) {
  // Only regular files: a FIFO would block the open, a directory reads as garbage.
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec) throw CaptureError("cannot open spool " + path.string() + ": " + ec.message());
  if (st.type() != std::filesystem::file_type::regular)
    throw CaptureError("spool " + path.string() + ": not a regular file");
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw CaptureError("cannot open spool " + path.string() + ": " + sys_error());
  std::fseek(f_, 0, SEEK_END);
  size_ = static_cast<std::uint64_t>(std::ftell(f_));
  std::fseek(f_, 0, SEEK_SET);
  if (size_ < sizeof(header_) || std::fread(&header_, sizeof(header_), 1, f_) != 1) {
    std::fclose(f_);
    throw CaptureError("spool " + path.string() + ": shorter than its 64-byte header (not a cdma spool)");
  }
  if (std::memcmp(header_.magic, spool::kMagic, sizeof(header_.magic)) != 0) {
    std::fclose(f_);
    throw CaptureError("spool " + path.string() + ": bad magic (expected CDMASPL1; not a cdma spool)");
  }
  if (header_.version > spool::kVersion) {
    std::fclose(f_);
    throw CaptureError("spool " + path.string() + ": version " + std::to_string(header_.version) +
                       " is newer than this cdma reads (spool version " + std::to_string(spool::kVersion) + ")");
  }
  if (header_.version == 0 || header_.header_bytes < sizeof(header_) || header_.header_bytes > size_) {
    std::fclose(f_);
    throw CaptureError("spool " + path.string() + ": damaged file header (version " + std::to_string(header_.version) +
                       ", header_bytes " + std::to_string(header_.header_bytes) + ", file of " + std::to_string(size_) +
                       " bytes)");
  }
  pos_ = header_.header_bytes;
}

SpoolReader::~SpoolReader() {
  if (f_) std::fclose(f_);
}

bool SpoolReader::next(SpoolRecord& rec, bool with_tensor_data) {
  if (truncated_ || damaged_ || pos_ >= size_) return false;
  spool::RecordHeader h{};
  if (size_ - pos_ < sizeof(h)) {
    truncated_ = true;
    return false;
  }
  read_at(pos_, &h, sizeof(h));
  if (h.magic != spool::kRecordMagic) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "record at offset %llu: bad record magic 0x%08x (expected 0x%08x)",
                  static_cast<unsigned long long>(pos_), h.magic, spool::kRecordMagic);
    damaged_ = true;
    damage_ = buf;
    return false;
  }
  if (h.payload_bytes > size_ - pos_ - sizeof(h)) {
    truncated_ = true;
    return false;
  }
  rec.type = static_cast<spool::RecordType>(h.type);
  rec.flags = h.flags;
  rec.payload_bytes = h.payload_bytes;
  rec.offset = pos_;
  rec.data_offset = pos_ + sizeof(h);
  std::uint64_t want = h.payload_bytes;
  if (rec.type == spool::RecordType::kTensor && !with_tensor_data)
    want = std::min<std::uint64_t>(want, sizeof(spool::TensorRecord));
  rec.payload.resize(static_cast<std::size_t>(want));
  if (want) read_at(rec.data_offset, rec.payload.data(), static_cast<std::size_t>(want));
  pos_ += sizeof(h) + h.payload_bytes;
  return true;
}

void SpoolReader::read_at(std::uint64_t off, void* out, std::size_t n) {
  if (off > size_ || n > size_ - off || std::fseek(f_, static_cast<long>(off), SEEK_SET) != 0 ||
      std::fread(out, 1, n, f_) != n)
    throw CaptureError("spool " + path_.string() + ": cannot read " + std::to_string(n) + " bytes at offset " +
                       std::to_string(off) + (std::ferror(f_) ? ": " + sys_error() : " (the file changed while read)"));
}

}  // namespace cdma::capture
