#include <cdma/formats/table.hpp>

#include <fmt/format.h>

#include <stdexcept>

namespace cdma::formats {

namespace {

bool kind_matches(const Table::Cell& c, Table::Kind k) {
  switch (k) {
    case Table::Kind::integer:
      return std::holds_alternative<std::int64_t>(c);
    case Table::Kind::real:
      return std::holds_alternative<double>(c);
    case Table::Kind::text:
      return std::holds_alternative<std::string>(c);
    case Table::Kind::boolean:
      return std::holds_alternative<bool>(c);
  }
  return false;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string cell_text(const Table::Cell& c) {
  if (const auto* i = std::get_if<std::int64_t>(&c)) return fmt::format("{}", *i);
  if (const auto* r = std::get_if<double>(&c)) return fmt::format("{}", *r);
  if (const auto* s = std::get_if<std::string>(&c)) return csv_field(*s);
  if (const auto* b = std::get_if<bool>(&c)) return *b ? "true" : "false";
  return "";
}

}  // namespace

void Table::add_row(std::vector<Cell> cells) {
  if (cells.size() != columns.size())
    throw std::logic_error(fmt::format("Table::add_row: {} cells for {} columns", cells.size(), columns.size()));
  for (std::size_t i = 0; i < cells.size(); ++i)
    if (!std::holds_alternative<std::monostate>(cells[i]) && !kind_matches(cells[i], columns[i].kind))
      throw std::logic_error("Table::add_row: cell of the wrong kind in column " + columns[i].name);
  rows.push_back(std::move(cells));
}

std::size_t Table::column(const std::string& name) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == name) return i;
  throw std::out_of_range("Table: no column " + name);
}

void write_csv(std::ostream& os, const Table& t) {
  for (std::size_t i = 0; i < t.columns.size(); ++i) os << (i ? "," : "") << csv_field(t.columns[i].name);
  os << '\n';
  for (const auto& row : t.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << cell_text(row[i]);
    os << '\n';
  }
}

}  // namespace cdma::formats
