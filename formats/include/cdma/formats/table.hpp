// A table of typed columns: the one shape of the tidy tables that the CSV writers and the Python
// API share (analyze::long_table, hwmodel::replay_tables), so that each number is formatted by
// one writer and a DataFrame and a CSV file of the same table hold the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

namespace cdma::formats {

struct Table {
  enum class Kind : std::uint8_t { integer, real, text, boolean };
  // An empty cell (monostate) is a value nobody measured or a producer did not write.
  using Cell = std::variant<std::monostate, std::int64_t, double, std::string, bool>;
  struct Column {
    std::string name;
    Kind kind = Kind::text;
  };

  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;

  Table() = default;
  explicit Table(std::vector<Column> cols) : columns(std::move(cols)) {}

  // Appends a row. Each cell must be empty or of its column's kind; throws std::logic_error
  // (a programming error) on a wrong count or kind.
  void add_row(std::vector<Cell> cells);
  // Index of a column by name; throws std::out_of_range when absent.
  std::size_t column(const std::string& name) const;
};

// RFC 4180 CSV: a header line of the column names, then one line per row. Empty cells are empty
// fields; reals in the shortest form that reads back to the same double; booleans true/false;
// text quoted when it holds a comma, quote or line break.
void write_csv(std::ostream& os, const Table& t);

}  // namespace cdma::formats
