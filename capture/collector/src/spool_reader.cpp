#include <cdma/capture/collector.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace cdma::capture {

namespace {
std::string sys_error() { return std::strerror(errno); }
}  // namespace

SpoolReader::SpoolReader(const std::filesystem::path& path) : path_(path) {
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
  pos_ = header_.header_bytes < sizeof(header_) ? sizeof(header_) : header_.header_bytes;
  std::fseek(f_, static_cast<long>(pos_), SEEK_SET);
}

SpoolReader::~SpoolReader() {
  if (f_) std::fclose(f_);
}

bool SpoolReader::next(SpoolRecord& rec, bool with_tensor_data) {
  if (truncated_ || pos_ >= size_) return false;
  spool::RecordHeader h{};
  if (size_ - pos_ < sizeof(h)) {
    truncated_ = true;
    return false;
  }
  std::fseek(f_, static_cast<long>(pos_), SEEK_SET);
  if (std::fread(&h, sizeof(h), 1, f_) != 1 || h.magic != spool::kRecordMagic ||
      h.payload_bytes > size_ - pos_ - sizeof(h)) {
    truncated_ = true;
    return false;
  }
  rec.type = static_cast<spool::RecordType>(h.type);
  rec.payload_bytes = h.payload_bytes;
  rec.data_offset = pos_ + sizeof(h);
  std::size_t want = static_cast<std::size_t>(h.payload_bytes);
  if (rec.type == spool::RecordType::kTensor && !with_tensor_data)
    want = std::min<std::size_t>(want, sizeof(spool::TensorRecord));
  rec.payload.resize(want);
  if (want && std::fread(rec.payload.data(), 1, want, f_) != want) {
    truncated_ = true;
    return false;
  }
  pos_ += sizeof(h) + h.payload_bytes;
  return true;
}

void SpoolReader::read_at(std::uint64_t off, void* out, std::size_t n) {
  if (off + n > size_ || std::fseek(f_, static_cast<long>(off), SEEK_SET) != 0 || std::fread(out, 1, n, f_) != n)
    throw CaptureError("spool " + path_.string() + ": cannot read " + std::to_string(n) + " bytes at offset " +
                       std::to_string(off));
}

}  // namespace cdma::capture
