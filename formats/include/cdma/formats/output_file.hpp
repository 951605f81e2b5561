// Writing an output file the way every cdma command and binding does: one rule for every kind of
// path a user may give (docs: README "Outputs").
//
//  - a regular file, or a name that does not exist yet: written atomically, into a temporary file
//    beside it that is renamed over it once complete (a failed or interrupted write leaves the old
//    file untouched and removes the temporary; a replaced file keeps its permission bits);
//  - a symbolic link: followed, link by link; its target is written by these rules and the link is
//    kept (a dangling link creates its target, as the shell's `>` does);
//  - a character device or a FIFO (/dev/null, /dev/full, a named pipe, a terminal), and the names of
//    open files (/dev/stdout, /dev/fd/N, /proc/.../fd/N): written in place, opened O_WRONLY without
//    O_CREAT or O_TRUNC, never replaced;
//  - a directory, a block device or a socket: refused.
// Every failure (open, write, close, rename) throws formats::Error naming the path and the system's
// reason, e.g. "cannot write /dev/full (No space left on device)".
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace cdma::formats {

// Where an output named `path` goes once its links are followed.
struct OutputTarget {
  enum class Kind {
    create,   // no file there yet: a new regular file
    regular,  // an existing regular file: replaced atomically
    in_place  // a character device, a FIFO or an open file's name: written as it is
  };
  std::filesystem::path given;  // the path as given
  std::filesystem::path path;   // the file written (the last link's target; == given without links)
  Kind kind = Kind::create;
};

// Follows `path`'s symbolic links (at most 40) and classifies the file they end at. Throws
// formats::Error for an empty path, a loop of links, a directory, a block device, a socket, or a
// path that cannot be examined (the system's reason in the message).
OutputTarget resolve_output(const std::filesystem::path& path);

// Writes what `fill` streams to `path` by the rules above. Throws formats::Error (nothing is left
// behind under the final name, and an existing regular file is unchanged, when it throws), and
// rethrows what `fill` throws after the same cleanup.
void write_output_file(const std::filesystem::path& path, const std::function<void(std::ostream&)>& fill);
void write_output_file(const std::filesystem::path& path, std::string_view text);

// For outputs that another library writes under a name of its own (the HDF5 trace writer): the
// regular file that `path` names once its links are followed, which the finished temporary file is
// then renamed onto (commit_output). Throws formats::Error when `path` names anything else (a
// device, a FIFO, an open file's name: such a file cannot take an HDF5 file and is never replaced).
std::filesystem::path regular_output_path(const std::filesystem::path& path);

// A fresh temporary name beside `final_path` (same folder, so that a rename is atomic):
// ".<name>.tmp.<pid>.<n>"; the file does not exist when this returns.
std::filesystem::path temporary_beside(const std::filesystem::path& final_path);

// Renames the finished `tmp` onto `final_path` (a path from regular_output_path). Throws
// formats::Error with the system's reason; `tmp` is left for the caller to remove.
void commit_output(const std::filesystem::path& tmp, const std::filesystem::path& final_path);

}  // namespace cdma::formats
