// render_html on hand-made documents: sections present, text escaped, wrong schema rejected.
#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/report/html.hpp>
#include <cdma/report/svg.hpp>

#include <gtest/gtest.h>

#include <sstream>

using nlohmann::json;

namespace {

json measures(double density, double zvc) {
  return {{"tensors", 1},
          {"iterations", 1},
          {"elements", 100},
          {"bytes", 400},
          {"nonzeros", density * 100},
          {"zero_runs", 3},
          {"density", density},
          {"codecs", {{"zvc", {{"bytes", 400 / zvc}, {"ratio", zvc}, {"mean_ratio", zvc}}}}}};
}

json analysis() {
  json a = {{"schema", "cdma-analysis"},
            {"schema_version", 1},
            {"options", {{"codecs", {"zvc"}}, {"layouts", {"stored"}}, {"dtypes", {"stored"}}}},
            {"traces", {{{"index", 0}, {"path", "x/<evil>.h5"}, {"model", "net<script>"}, {"source", "synthetic"}}}}};
  json l = measures(0.25, 3.2);
  l.update({{"trace", 0},
            {"layer", "conv1"},
            {"layer_index", 0},
            {"op", "conv"},
            {"role", "x"},
            {"layout", "stored"},
            {"dtype", "stored"}});
  a["layer"] = {l};
  json li = l;
  li["iteration"] = 5;
  a["layer_iteration"] = {li};
  json it = measures(0.25, 3.2);
  it.update({{"trace", 0}, {"iteration", 5}, {"layout", "stored"}, {"dtype", "stored"}});
  a["iteration"] = {it};
  json n = measures(0.25, 3.2);
  n.update({{"trace", 0}, {"layout", "stored"}, {"dtype", "stored"}});
  a["network"] = {n};
  a["tensor"] = json::array();
  return a;
}

TEST(ReportHtml, SectionsAndEscaping) {
  cdma::report::ReportInputs in;
  in.analysis = cdma::report::analysis_tables(analysis());
  in.title = "t";
  std::string html = cdma::report::render_html(in);
  for (const char* id : {"id=\"summary\"", "id=\"density\"", "id=\"ratios\"", "id=\"variants\"", "id=\"replay\""})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  EXPECT_EQ(html.find("net<script>"), std::string::npos);
  EXPECT_NE(html.find("net&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("3.20x"), std::string::npos);                          // the summary table's ZVC ratio
  EXPECT_NE(html.find("25.0%"), std::string::npos);                          // its density
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external resources
}

TEST(ReportHtml, RejectsOtherDocuments) {
  using cdma::report::analysis_tables;
  EXPECT_THROW(analysis_tables(json{{"schema", "cdma-analysis"}, {"schema_version", 2}}), cdma::formats::Error);
  EXPECT_THROW(analysis_tables(json::array()), cdma::formats::Error);
  json a = analysis();
  a["options"]["codecs"] = 5;  // a field of the wrong type
  EXPECT_THROW(analysis_tables(a), cdma::formats::Error);
  // Counts are JSON integers 0 .. 2^62: a float, a negative or a larger number names the row and
  // the field (1e300 bytes became -9223372036854775808).
  for (const char* level : {"network", "layer"})
    for (const char* field : {"bytes", "tensors"})
      for (const char* bad : {"1e300", "-5", "2.5", "9223372036854775807"}) {
        json b = analysis();
        ASSERT_TRUE(b.contains(level) && !b[level].empty()) << level;
        b[level][0][field] = json::parse(bad);
        try {
          analysis_tables(b);
          ADD_FAILURE() << level << "." << field << " " << bad << " accepted";
        } catch (const cdma::formats::Error& e) {
          EXPECT_NE(std::string(e.what()).find(std::string(level) + "[0]." + field + ": expected an integer 0 .. 2^62"),
                    std::string::npos)
              << e.what();
        }
      }
}

TEST(ReportSvg, BarHeightsFollowValues) {
  cdma::report::Axes ax;
  ax.y_min = 0;
  std::string svg = cdma::report::bar_chart(ax, {"a", "b"}, {{"s", {}, {1.0, 3.0}}});
  // Two bars; the second is three times as tall as the first.
  auto h = [&](std::size_t from) {
    auto p = svg.find("height=\"", svg.find("class=\"bar\"", from) - 60);
    return std::stod(svg.substr(p + 8));
  };
  auto first = svg.find("<rect x=");
  double h1 = h(first);
  double h2 = h(svg.find("class=\"bar\"", first) + 10);
  EXPECT_NEAR(h2 / h1, 3.0, 0.02);
}

}  // namespace

// The page's two inputs agree: the analysis in memory and the same analysis read back from its JSON
// give the same tables and the same page.
TEST(ReportHtml, TablesFromMemoryEqualTablesFromJson) {
  cdma::analyze::Options o;
  o.layouts = {"stored", "NHWC"};
  o.dtypes = {"stored", "float16"};
  const auto a = cdma::analyze::run_analysis({std::string(CDMA_SOURCE_DIR) + "/data/vgg-fmnist.h5"}, o);
  std::ostringstream js;
  cdma::analyze::write_json(js, a);
  const auto mem = cdma::report::analysis_tables(a);
  const auto doc = cdma::report::analysis_tables(json::parse(js.str()));
  ASSERT_GT(mem.layer.size(), 5u);
  EXPECT_EQ(mem.network.size(), 4u);  // every variant
  auto same = [](const std::vector<cdma::report::AnalysisRow>& x, const std::vector<cdma::report::AnalysisRow>& y) {
    ASSERT_EQ(x.size(), y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].layer, y[i].layer);
      EXPECT_EQ(x[i].layer_index, y[i].layer_index);
      EXPECT_EQ(x[i].iteration, y[i].iteration);
      EXPECT_EQ(x[i].layout + x[i].dtype, y[i].layout + y[i].dtype);
      EXPECT_EQ(x[i].bytes, y[i].bytes);
      EXPECT_DOUBLE_EQ(x[i].density, y[i].density);
      ASSERT_EQ(x[i].ratio.size(), y[i].ratio.size());
      for (std::size_t k = 0; k < x[i].ratio.size(); ++k) EXPECT_DOUBLE_EQ(x[i].ratio[k], y[i].ratio[k]);
    }
  };
  same(mem.network, doc.network);
  same(mem.layer, doc.layer);
  same(mem.iteration, doc.iteration);
  same(mem.layer_iteration, doc.layer_iteration);
  cdma::report::ReportInputs x, y;
  x.analysis = mem;
  y.analysis = doc;
  EXPECT_EQ(cdma::report::render_html(x), cdma::report::render_html(y));
}
