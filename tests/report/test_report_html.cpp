// render_html on hand-made documents: sections present, text escaped, wrong schema rejected.
#include <cdma/formats/error.hpp>
#include <cdma/report/html.hpp>
#include <cdma/report/svg.hpp>

#include <gtest/gtest.h>

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
  in.analysis = analysis();
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
  cdma::report::ReportInputs in;
  in.analysis = json{{"schema", "cdma-analysis"}, {"schema_version", 2}};
  EXPECT_THROW(cdma::report::render_html(in), cdma::formats::Error);
  in.analysis = json::array();
  EXPECT_THROW(cdma::report::render_html(in), cdma::formats::Error);
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
