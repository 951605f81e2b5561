// Typed errors raised at I/O and configuration boundaries of cdma::formats.
#pragma once

#include <stdexcept>
#include <string>

namespace cdma::formats {

// Base of every error cdma libraries throw. what() is a complete, user-facing sentence.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A request is invalid as given (an unknown preset, network or codec name, a value out of range,
// options that exclude each other): the caller's input, not a file, is wrong. Command lines map
// it to exit status 2 (every other Error: 1).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A trace file could not be opened, read or written, or does not follow trace format v1.
// file() and object() name where the problem is ("" when not applicable).
class TraceError : public Error {
 public:
  TraceError(std::string file, std::string object, const std::string& what);
  const std::string& file() const noexcept { return file_; }
  const std::string& object() const noexcept { return object_; }

 private:
  std::string file_;
  std::string object_;
};

// A codec stream is malformed (decoders) or a codec name/parameter is invalid.
class CodecError : public Error {
 public:
  using Error::Error;
};

}  // namespace cdma::formats
