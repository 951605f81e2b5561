// Option validation and the capture schedule of cdma-train.
#include "options.hpp"

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace cdma::train;
using V = std::vector<std::int64_t>;

namespace {

Options parse(std::vector<std::string> args) {
  Options o;
  CLI::App app;
  add_options(app, o);
  std::vector<const char*> argv{"cdma-train"};
  for (auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  return o;
}

}  // namespace

TEST(TrainSchedule, DefaultIsFiveSpreadFromFirstToLast) {
  Options o;
  EXPECT_EQ(capture_schedule(o, 101), (V{0, 25, 50, 75, 100}));
  EXPECT_EQ(capture_schedule(o, 3), (V{0, 1, 2}));  // duplicates collapse
  EXPECT_EQ(capture_schedule(o, 1), (V{0}));
}

TEST(TrainSchedule, EachRuleAndTheirUnion) {
  Options o;
  o.capture_every = 4;
  EXPECT_EQ(capture_schedule(o, 10), (V{0, 4, 8}));
  o = {};
  o.capture_first = 2;
  o.capture_last = 3;
  EXPECT_EQ(capture_schedule(o, 10), (V{0, 1, 7, 8, 9}));
  o.capture_at = {5, 1};
  EXPECT_EQ(capture_schedule(o, 10), (V{0, 1, 5, 7, 8, 9}));
  o = {};
  o.capture_spread = 3;
  EXPECT_EQ(capture_schedule(o, 10), (V{0, 5, 9}));  // 4.5 rounds up
  o.capture_spread = 1;
  EXPECT_EQ(capture_schedule(o, 10), (V{0}));
  o = {};
  o.capture_first = 50;  // more than the run: clipped
  EXPECT_EQ(capture_schedule(o, 3), (V{0, 1, 2}));
}

TEST(TrainSchedule, NoCaptureAndBadIterations) {
  Options o;
  o.no_capture = true;
  EXPECT_TRUE(capture_schedule(o, 100).empty());
  o = {};
  o.capture_at = {3, 10};
  try {
    capture_schedule(o, 10);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--capture-at 10 is past the last iteration (9)"), std::string::npos)
        << e.what();
  }
}

TEST(TrainOptions, ValidateRejectsBadValues) {
  auto rejects = [](auto mutate, const char* needle) {
    Options o;
    mutate(o);
    try {
      validate(o);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  rejects([](Options& o) { o.batch = -1; }, "--batch");
  rejects([](Options& o) { o.iterations = -5; }, "--iterations");
  rejects([](Options& o) { o.optimizer = "rmsprop"; }, "--optimizer");
  rejects([](Options& o) { o.momentum = 1.0; }, "--momentum");
  rejects([](Options& o) { o.threads = -1; }, "--jobs");
  rejects([](Options& o) { o.capture_every = -2; }, "--capture-every");
  rejects([](Options& o) { o.capture_at = {2, -1}; }, "--capture-at");
  rejects([](Options& o) { o.capture_batch = -1; }, "--capture-batch");
  rejects([](Options& o) { o.deflate = 10; }, "--deflate");
  rejects([](Options& o) { o.lr = -0.1; }, "--lr");
  rejects(
      [](Options& o) {
        o.no_capture = true;
        o.capture_every = 3;
      },
      "--no-capture");
  Options ok;
  EXPECT_NO_THROW(validate(ok));
}

// 0 in an Options field means "not given" (the network's default, no such capture rule), so a 0, a
// negative value or NaN on the command line must be refused by the parser, naming the option (issue 29).
TEST(TrainOptions, ParserRefusesOutOfRangeNumbers) {
  for (const auto& [opt, value] : std::vector<std::pair<std::string, std::string>>{{"--capture-every", "0"},
                                                                                   {"--capture-first", "0"},
                                                                                   {"--capture-last", "0"},
                                                                                   {"--capture-spread", "0"},
                                                                                   {"--capture-at", "-1"},
                                                                                   {"--capture-batch", "-1"},
                                                                                   {"--batch", "0"},
                                                                                   {"--iterations", "0"},
                                                                                   {"--epochs", "0"},
                                                                                   {"--epochs", "nan"},
                                                                                   {"--lr", "0"},
                                                                                   {"--lr", "nan"},
                                                                                   {"--momentum", "1"},
                                                                                   {"--weight-decay", "inf"},
                                                                                   {"--jobs", "-1"},
                                                                                   {"--deflate", "10"},
                                                                                   {"--test-limit", "-1"}}) {
    try {
      parse({opt, value});
      ADD_FAILURE() << "accepted " << opt << " " << value;
    } catch (const CLI::ValidationError& e) {
      EXPECT_NE(std::string(e.what()).find(opt), std::string::npos) << e.what();
    }
  }
  // the edges that are allowed
  auto o = parse({"--capture-every", "1", "--capture-batch", "0", "--momentum", "0", "--train-limit", "0", "-j", "0"});
  EXPECT_EQ(o.capture_every, 1);
  EXPECT_EQ(o.capture_batch, 0);
}

TEST(TrainOptions, CommandLineParsing) {
  auto o = parse({"--net", "squeezenet", "-b", "8", "-i", "12", "--capture-at", "0,5,11", "--capture-batch", "2", "-o",
                  "x.h5", "--seed", "42", "--threads", "1"});
  EXPECT_EQ(o.net, "squeezenet");
  EXPECT_EQ(o.batch, 8);
  EXPECT_EQ(o.iterations, 12);
  EXPECT_EQ(o.capture_at, (V{0, 5, 11}));
  EXPECT_EQ(o.capture_batch, 2);
  EXPECT_EQ(o.output, "x.h5");
  EXPECT_EQ(o.seed, 42u);
  EXPECT_THROW(parse({"--iterations", "5", "--epochs", "1"}), CLI::ParseError);  // exclusive
  EXPECT_THROW(parse({"--batch", "many"}), CLI::ParseError);
  EXPECT_THROW(parse({"--no-such-flag"}), CLI::ParseError);
}

TEST(TrainOptions, CommandLineIsShellQuoted) {
  const char* argv[] = {"cdma-train", "--net", "vgg", "-o", "my trace.h5", "--capture-at", "0,5", "it's"};
  EXPECT_EQ(command_line(8, argv), "cdma-train --net vgg -o 'my trace.h5' --capture-at 0,5 'it'\\''s'");
}
