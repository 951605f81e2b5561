// formats::Table and its CSV writer: the shape of the tidy tables the CLI's CSV and the Python API
// share (analyze::long_table, hwmodel::replay_tables).
#include <cdma/formats/table.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace cdma::formats {
namespace {

using K = Table::Kind;

TEST(Table, CsvQuotesTextLeavesUnknownCellsEmptyAndRoundTripsReals) {
  Table t({{"name", K::text}, {"n", K::integer}, {"r", K::real}, {"ok", K::boolean}});
  t.add_row({std::string("conv1"), std::int64_t{-3}, 0.1, true});
  t.add_row({std::string("a,\"b\"\nc"), Table::Cell(), Table::Cell(), false});
  t.add_row({Table::Cell(), std::int64_t{9007199254740993}, 1.0 / 3.0, Table::Cell()});
  std::ostringstream os;
  write_csv(os, t);
  EXPECT_EQ(os.str(),
            "name,n,r,ok\n"
            "conv1,-3,0.1,true\n"
            "\"a,\"\"b\"\"\nc\",,,false\n"
            ",9007199254740993,0.3333333333333333,\n");
  // The shortest text that reads back to the same double.
  EXPECT_EQ(std::strtod("0.3333333333333333", nullptr), 1.0 / 3.0);
  EXPECT_EQ(t.column("r"), 2u);
  EXPECT_THROW(t.column("missing"), std::out_of_range);
}

TEST(Table, RefusesRowsThatDoNotFitTheColumns) {
  Table t({{"n", K::integer}, {"s", K::text}});
  EXPECT_THROW(t.add_row({std::int64_t{1}}), std::logic_error);
  EXPECT_THROW(t.add_row({1.5, std::string("x")}), std::logic_error);  // a real in an integer column
  EXPECT_THROW(t.add_row({std::int64_t{1}, true}), std::logic_error);
  EXPECT_TRUE(t.rows.empty());
  t.add_row({std::int64_t{1}, std::string("x")});
  EXPECT_EQ(t.rows.size(), 1u);
}

}  // namespace
}  // namespace cdma::formats
