using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class FemnistTests
{
    private const int Pixels = Femnist.PixelsPerImage;

    private string directory = null!;

    [SetUp]
    public void SetUp()
    {
        directory = Path.Combine(Path.GetTempPath(), "zerofl-femnist-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(directory, "train"));
        Directory.CreateDirectory(Path.Combine(directory, "test"));
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The raw LEAF value of pixel <paramref name="pixel"/> of a writer's sample: k/255 like LEAF's.</summary>
    private static float Pixel(int writer, int sample, int pixel, bool test) =>
        ((writer * 37 + sample * 11 + pixel * 3 + (test ? 101 : 0)) % 256) / 255f;

    private static int Label(int writer, int sample, bool test) => (writer * 13 + sample * 5 + (test ? 3 : 0)) % Femnist.Classes;

    private static (string Name, int Writer, int Samples)[] Users(params (int Writer, int Samples)[] users) =>
        users.Select(u => ($"f{u.Writer:D4}_{u.Writer + 10}", u.Writer, u.Samples)).ToArray();

    /// <summary>A LEAF file as a JSON object with keys users, num_samples, user_data (and hierarchies).</summary>
    private static JsonObject Leaf(bool test, params (string Name, int Writer, int Samples)[] users)
    {
        var data = new JsonObject();
        foreach (var (name, writer, samples) in users)
        {
            var x = new JsonArray();
            var y = new JsonArray();
            for (int s = 0; s < samples; s++)
            {
                var row = new JsonArray();
                for (int p = 0; p < Pixels; p++)
                {
                    row.Add(Pixel(writer, s, p, test));
                }
                x.Add(row);
                y.Add(Label(writer, s, test));
            }
            data[name] = new JsonObject { ["x"] = x, ["y"] = y };
        }
        return new JsonObject
        {
            ["users"] = new JsonArray(users.Select(u => (JsonNode)JsonValue.Create(u.Name)).ToArray()),
            ["num_samples"] = new JsonArray(users.Select(u => (JsonNode)JsonValue.Create(u.Samples)).ToArray()),
            ["hierarchies"] = new JsonArray(users.Select(u => (JsonNode)JsonValue.Create("h" + u.Writer)).ToArray()),
            ["user_data"] = data,
        };
    }

    private string Write(string split, string file, JsonNode json) => WriteText(split, file, json.ToJsonString());

    private string WriteText(string split, string file, string text)
    {
        string path = Path.Combine(directory, split, file);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>
    /// Writers 0 and 1 in all_data_2_train.json, writer 2 in all_data_10_train.json (ordinal order
    /// puts "10" first, so the writer order is 2, 0, 1); test files hold all three.
    /// </summary>
    private void WriteThreeWriters()
    {
        Write("train", "all_data_2_train.json", Leaf(false, Users((0, 3), (1, 2))));
        Write("train", "all_data_10_train.json", Leaf(false, Users((2, 5))));
        Write("test", "all_data_2_test.json", Leaf(true, Users((1, 1), (0, 2))));
        Write("test", "all_data_10_test.json", Leaf(true, Users((2, 4))));
    }

    private static void AssertSamples(Dataset data, int first, int writer, int samples, bool test)
    {
        for (int s = 0; s < samples; s++)
        {
            Assert.That(data.Labels[first + s], Is.EqualTo(Label(writer, s, test)), $"label of writer {writer} sample {s}");
            var image = data.Sample(first + s);
            foreach (int p in new[] { 0, 1, 28 * 14 + 9, Pixels - 1 })
            {
                Assert.That(image[p], Is.EqualTo((Pixel(writer, s, p, test) - 0.5f) / 0.5f),
                    $"pixel {p} of writer {writer} sample {s}");
            }
        }
    }

    [Test]
    public void LoadsWritersInFileOrderWithGroupsLabelsAndNormalisedPixels()
    {
        WriteThreeWriters();
        var (split, writers) = Femnist.LoadWithWriters(directory);
        var (train, test, groups) = split;

        Assert.That(writers, Is.EqualTo(new[] { "f0002_12", "f0000_10", "f0001_11" }));
        Assert.That((train.Count, test.Count), Is.EqualTo((10, 7)));
        Assert.That((train.Channels, train.Height, train.Width, train.ClassCount), Is.EqualTo((1, 28, 28, 62)));
        Assert.That((test.Channels, test.Height, test.Width, test.ClassCount), Is.EqualTo((1, 28, 28, 62)));
        Assert.That((train.Name, test.Name), Is.EqualTo(("femnist/train", "femnist/test")));
        Assert.That(groups, Is.EqualTo(new[] { 0, 0, 0, 0, 0, 1, 1, 1, 2, 2 }));

        AssertSamples(train, 0, writer: 2, samples: 5, test: false);
        AssertSamples(train, 5, writer: 0, samples: 3, test: false);
        AssertSamples(train, 8, writer: 1, samples: 2, test: false);
        AssertSamples(test, 0, writer: 2, samples: 4, test: true);
        AssertSamples(test, 4, writer: 1, samples: 1, test: true);
        AssertSamples(test, 5, writer: 0, samples: 2, test: true);

        // One exact value: writer 0, sample 1, row 3, column 4 is (0*37 + 11 + 3*(3*28+4)) % 256 / 255 = 19/255.
        Assert.That(train.Features[6 * Pixels + 3 * 28 + 4], Is.EqualTo((19f / 255f - 0.5f) / 0.5f));
        Assert.That(Femnist.Load(directory).Train.Features, Is.EqualTo(train.Features));
    }

    [Test]
    public void WhiteIsOneAndFullInkIsMinusOne()
    {
        var file = Leaf(false, Users((0, 1)));
        var row = file["user_data"]!["f0000_10"]!["x"]![0]!.AsArray();
        row[0] = 1.0;
        row[1] = 0.0;
        row[2] = 0.5;
        Write("train", "a.json", file);
        Write("test", "a.json", Leaf(true, Users((0, 1))));
        var train = Femnist.Load(directory).Train;
        Assert.That(train.Features[..3], Is.EqualTo(new[] { 1f, -1f, 0f }));
    }

    [Test]
    public void MaxWritersKeepsTheFirstWritersInTrainAndTest()
    {
        WriteThreeWriters();
        var (split, writers) = Femnist.LoadWithWriters(directory, maxWriters: 2);
        Assert.That(writers, Is.EqualTo(new[] { "f0002_12", "f0000_10" }));
        Assert.That((split.Train.Count, split.Test.Count), Is.EqualTo((8, 6)));
        Assert.That(split.TrainGroups, Is.EqualTo(new[] { 0, 0, 0, 0, 0, 1, 1, 1 }));
        AssertSamples(split.Train, 5, writer: 0, samples: 3, test: false);
        AssertSamples(split.Test, 0, writer: 2, samples: 4, test: true);
        AssertSamples(split.Test, 4, writer: 0, samples: 2, test: true);

        Assert.That(Femnist.LoadWithWriters(directory, maxWriters: 3).Writers, Has.Count.EqualTo(3));
        Assert.That(Femnist.Load(directory, maxWriters: 10).Train.Count, Is.EqualTo(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => Femnist.Load(directory, maxWriters: 0));
    }

    [Test]
    public void MaxWritersStopsReadingTrainFilesOnceEnoughWritersAreKnown()
    {
        WriteThreeWriters();
        WriteText("train", "all_data_1_train.json", "{ not json");
        Assert.That(Femnist.Load(directory, maxWriters: 1).Train.Count, Is.EqualTo(5));
        Assert.Throws<DataFormatException>(() => Femnist.Load(directory, maxWriters: 3));
    }

    [Test]
    public void AWriterInTwoTrainFilesKeepsOneGroup()
    {
        Write("train", "a.json", Leaf(false, Users((4, 2))));
        Write("train", "b.json", Leaf(false, Users((5, 1), (4, 3))));
        Write("test", "a.json", Leaf(true, Users((4, 1))));
        var (split, writers) = Femnist.LoadWithWriters(directory);
        Assert.That(writers, Is.EqualTo(new[] { "f0004_14", "f0005_15" }));
        Assert.That(split.TrainGroups, Is.EqualTo(new[] { 0, 0, 1, 0, 0, 0 }));
    }

    [Test]
    public void KeyOrderDoesNotMatterAndUnknownKeysAreSkipped()
    {
        var users = Users((0, 2), (1, 3));
        string canonical = Write("train", "canonical.json", Leaf(false, users));

        var leaf = Leaf(false, users);
        var reordered = new JsonObject
        {
            ["hierarchies"] = new JsonObject { ["deep"] = new JsonArray(new JsonArray(1, 2), new JsonObject { ["a"] = "}]" }) },
            ["user_data"] = new JsonObject(),
            ["extra"] = 3.5,
            ["num_samples"] = leaf["num_samples"]!.DeepClone(),
            ["users"] = leaf["users"]!.DeepClone(),
        };
        foreach (var (name, _, _) in Enumerable.Reverse(users))
        {
            var original = leaf["user_data"]![name]!;
            reordered["user_data"]![name] = new JsonObject
            {
                ["y"] = original["y"]!.DeepClone(),
                ["note"] = new JsonArray("x", new JsonArray()),
                ["x"] = original["x"]!.DeepClone(),
            };
        }
        string other = Write("train", "reordered.json", reordered);

        var expected = Femnist.LoadFile(canonical);
        var actual = Femnist.LoadFile(other);
        Assert.That(actual.Select(u => (u.Name, u.SampleCount)), Is.EqualTo(new[] { ("f0000_10", 2), ("f0001_11", 3) }));
        for (int u = 0; u < expected.Count; u++)
        {
            Assert.That(actual[u].Pixels, Is.EqualTo(expected[u].Pixels));
            Assert.That(actual[u].Labels, Is.EqualTo(expected[u].Labels));
        }
        Assert.That(expected[1].Pixels[Pixels + 5], Is.EqualTo(Pixel(1, 1, 5, test: false)));
    }

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(100)]
    [TestCase(4096)]
    public void SmallBuffersAreRefilledAndGrownWithoutChangingTheResult(int bufferSize)
    {
        var users = Users((0, 3), (1, 2), (2, 4));
        var leaf = Leaf(false, users);
        // A name longer than most of the buffers forces them to grow for a single token.
        string longName = new('w', 5000);
        leaf["users"]!.AsArray().Add(longName);
        leaf["num_samples"]!.AsArray().Add(1);
        leaf["user_data"]![longName] = new JsonObject
        {
            ["x"] = new JsonArray(new JsonArray(Enumerable.Range(0, Pixels).Select(_ => (JsonNode?)JsonValue.Create(0.25f)).ToArray())),
            ["y"] = new JsonArray(61),
        };
        string path = Write("train", "big.json", leaf);

        var read = Femnist.LoadFile(path, bufferSize);
        Assert.That(read.Select(u => u.Name), Is.EqualTo(users.Select(u => u.Name).Append(longName)));
        foreach (var (name, writer, samples) in users)
        {
            var user = read.Single(u => u.Name == name);
            Assert.That(user.SampleCount, Is.EqualTo(samples));
            Assert.That(user.Labels, Is.EqualTo(Enumerable.Range(0, samples).Select(s => Label(writer, s, false))));
            var expected = new float[samples * Pixels];
            for (int s = 0; s < samples; s++)
            {
                for (int p = 0; p < Pixels; p++)
                {
                    expected[s * Pixels + p] = Pixel(writer, s, p, false);
                }
            }
            Assert.That(user.Pixels, Is.EqualTo(expected), name);
        }
        Assert.That(read[^1].Pixels, Is.All.EqualTo(0.25f));
        Assert.That(read[^1].Labels, Is.EqualTo(new[] { 61 }));
    }

    [Test]
    public void AFileOfSeveralBuffersLoadsThroughLoad()
    {
        string path = Write("train", "large.json", Leaf(false, Users((0, 150), (1, 150))));
        Assert.That(new FileInfo(path).Length, Is.GreaterThan(2L * Femnist.DefaultBufferSize));
        Write("test", "t.json", Leaf(true, Users((1, 2))));

        var split = Femnist.Load(directory);
        Assert.That(split.Train.Count, Is.EqualTo(300));
        AssertSamples(split.Train, 0, writer: 0, samples: 150, test: false);
        AssertSamples(split.Train, 150, writer: 1, samples: 150, test: false);
        Assert.That(split.TrainGroups, Is.EqualTo(Enumerable.Repeat(0, 150).Concat(Enumerable.Repeat(1, 150))));
    }

    private static readonly (string Case, Action<JsonObject> Corrupt, string Expected)[] Corruptions =
    [
        ("missing users", leaf => leaf.Remove("users"), "no \"users\""),
        ("missing user_data", leaf => leaf.Remove("user_data"), "no \"user_data\""),
        ("missing num_samples", leaf => leaf.Remove("num_samples"), "no \"num_samples\""),
        ("num_samples above x rows", leaf => leaf["num_samples"]![1] = 3, "user f0001_11: num_samples[1] is 3 but x has 2 rows"),
        ("num_samples below x rows", leaf => leaf["num_samples"]![0] = 1, "user f0000_10: num_samples[0] is 1 but x has 4 rows"),
        ("y shorter than num_samples", leaf => leaf["user_data"]!["f0001_11"]!["y"]!.AsArray().RemoveAt(0),
            "user f0001_11: num_samples[1] is 2 but y has 1 entries"),
        ("x row of 783", leaf => leaf["user_data"]!["f0000_10"]!["x"]![2]!.AsArray().RemoveAt(0),
            "user f0000_10: x row 2 has 783 values, expected 784"),
        ("x row of 785", leaf => leaf["user_data"]!["f0000_10"]!["x"]![1]!.AsArray().Add(0.5),
            "user f0000_10: x row 1 has more than 784 values"),
        ("pixel above 1", leaf => leaf["user_data"]!["f0000_10"]!["x"]![0]![7] = 1.5, "x row 0 value 7 is not a number in [0, 1]"),
        ("pixel a string", leaf => leaf["user_data"]!["f0000_10"]!["x"]![0]![7] = "0.5", "expected a number"),
        ("y of 62", leaf => leaf["user_data"]!["f0001_11"]!["y"]![1] = 62, "user f0001_11: y[1] is not a class in 0..61"),
        ("y of -1", leaf => leaf["user_data"]!["f0001_11"]!["y"]![0] = -1, "user f0001_11: y[0] is not a class in 0..61"),
        ("y fractional", leaf => leaf["user_data"]!["f0001_11"]!["y"]![0] = 1.5, "user f0001_11: y[0] is not a class"),
        ("listed user without user_data", leaf => leaf["user_data"]!.AsObject().Remove("f0001_11"),
            "user f0001_11 is listed in users but has no user_data"),
        ("user_data of an unlisted user", leaf =>
            {
                leaf["users"]!.AsArray().RemoveAt(1);
                leaf["num_samples"]!.AsArray().RemoveAt(1);
            }, "user f0001_11 has user_data but is not listed in users"),
        ("user listed twice", leaf =>
            {
                leaf["users"]!.AsArray().Add("f0000_10");
                leaf["num_samples"]!.AsArray().Add(4);
            }, "user f0000_10 is listed twice"),
        ("num_samples shorter than users", leaf => leaf["num_samples"]!.AsArray().RemoveAt(1), "num_samples has 1 entries but users has 2"),
        ("user without x", leaf => leaf["user_data"]!["f0000_10"]!.AsObject().Remove("x"), "user f0000_10: user_data has no \"x\""),
        ("user without y", leaf => leaf["user_data"]!["f0000_10"]!.AsObject().Remove("y"), "user f0000_10: user_data has no \"y\""),
        ("users not an array", leaf => leaf["users"] = "f0000_10", "expected an array for users"),
        ("top level an array", _ => { }, "expected an object for the top level"),
    ];

    private static IEnumerable<TestCaseData> CorruptionCases() =>
        Corruptions.Select((c, i) => new TestCaseData(i, c.Expected).SetName($"CorruptFileIsNamed({c.Case})"));

    [TestCaseSource(nameof(CorruptionCases))]
    public void CorruptFileIsNamed(int index, string expected)
    {
        var leaf = Leaf(false, Users((0, 4), (1, 2)));
        Assert.That(Femnist.LoadFile(Write("train", "valid.json", leaf)), Has.Count.EqualTo(2), "valid before corruption");
        Corruptions[index].Corrupt(leaf);
        JsonNode json = Corruptions[index].Case == "top level an array" ? new JsonArray(leaf) : leaf;
        string path = Write("train", "all_data_7_train.json", json);
        File.Delete(Path.Combine(directory, "train", "valid.json"));
        Write("test", "t.json", Leaf(true, Users((0, 1))));

        var error = Assert.Throws<DataFormatException>(() => Femnist.Load(directory))!;
        Assert.That(error.FilePath, Is.EqualTo(path));
        Assert.That(error.Message, Does.StartWith(path + ": "));
        Assert.That(error.Message, Does.Contain(expected));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [TestCase("", "not valid JSON")]
    [TestCase("hello", "not valid JSON")]
    [TestCase("{\"users\": [\"a\"], \"num_samples\": [0], \"user_data\": {\"a\": {\"x\": [], \"y\": []}}} {}", "not valid JSON")]
    [TestCase("{\"users\": [\"a\"], \"num_samples\": [0], \"user_data\": {\"a\": {\"x\": [], \"y\": []}}} ]", "not valid JSON")]
    [TestCase("{\"users\": [\"a\"], \"num_samples\": [0], \"user_data\": {\"a\": {\"x\": [], \"y\": []}", "not valid JSON")]
    [TestCase("{\"users\": [\"a\"], \"users\": [\"a\"], \"num_samples\": [0], \"user_data\": {}}", "duplicate key \"users\"")]
    public void NotJsonOrTruncatedJsonIsNamed(string text, string expected)
    {
        string path = WriteText("test", "broken.json", text);
        var error = Assert.Throws<DataFormatException>(() => Femnist.LoadFile(path))!;
        Assert.That(error.Message, Does.StartWith(path + ": "));
        Assert.That(error.Message, Does.Contain(expected));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void TheSmallestValidFileLoads()
    {
        string path = WriteText("test", "empty-user.json",
            "{\"users\": [\"a\"], \"num_samples\": [0], \"user_data\": {\"a\": {\"x\": [], \"y\": []}}}\n");
        var users = Femnist.LoadFile(path);
        Assert.That(users.Select(u => (u.Name, u.SampleCount, u.Pixels.Length, u.Labels.Length)),
            Is.EqualTo(new[] { ("a", 0, 0, 0) }));
    }

    [Test]
    public void TruncatedAndFlippedFilesOnlyEverThrowDataFormatException()
    {
        byte[] valid = Encoding.UTF8.GetBytes(Leaf(false, Users((0, 2), (1, 1))).ToJsonString());
        var random = new Random(1234);
        string path = Path.Combine(directory, "train", "fuzz.json");
        int truncations = 0, rejected = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            byte[] bytes;
            bool truncate = trial % 2 == 0;
            if (truncate)
            {
                bytes = valid[..random.Next(valid.Length)];
                truncations++;
            }
            else
            {
                bytes = (byte[])valid.Clone();
                int flips = 1 + random.Next(4);
                for (int f = 0; f < flips; f++)
                {
                    // Favour the short structural part at both ends as well as the pixel body.
                    int at = random.Next(3) switch
                    {
                        0 => random.Next(Math.Min(200, bytes.Length)),
                        1 => bytes.Length - 1 - random.Next(Math.Min(200, bytes.Length)),
                        _ => random.Next(bytes.Length),
                    };
                    bytes[at] = random.Next(2) == 0 ? (byte)random.Next(256) : (byte)(bytes[at] ^ (1 << random.Next(8)));
                }
            }
            File.WriteAllBytes(path, bytes);
            try
            {
                Femnist.LoadFile(path, bufferSize: 1 + random.Next(300));
            }
            catch (DataFormatException error)
            {
                Assert.That(error.FilePath, Is.EqualTo(path));
                Assert.That(error.Message, Does.Not.Contain('\n'));
                rejected++;
                continue;
            }
            catch (Exception other)
            {
                Assert.Fail($"trial {trial} ({(truncate ? "truncated" : "flipped")}) threw {other.GetType().Name}: {other.Message}");
            }
            Assert.That(truncate, Is.False, $"trial {trial}: a truncated file ({bytes.Length} of {valid.Length} bytes) loaded");
        }
        Assert.That(rejected, Is.GreaterThanOrEqualTo(truncations));
    }

    [Test]
    public void MissingDirectorySaysWhereItLookedAndHowToGetTheData()
    {
        string missing = Path.Combine(directory, "nowhere");
        var error = Assert.Throws<DataNotFoundException>(() => Femnist.Load(missing))!;
        AssertHint(error, missing);
        Assert.That(error.Directory, Is.EqualTo(missing));

        AssertHint(Assert.Throws<DataNotFoundException>(() => Femnist.Load(null))!, "no data directory given");
    }

    [Test]
    public void MissingJsonFilesSayWhichAndHowToGetTheData()
    {
        var error = Assert.Throws<DataNotFoundException>(() => Femnist.Load(directory))!;
        AssertHint(error, directory);
        Assert.That(error.Message, Does.Contain("train/*.json").And.Contain("test/*.json"));

        Write("train", "a.json", Leaf(false, Users((0, 1))));
        WriteText("test", "notes.txt", "not a json file");
        error = Assert.Throws<DataNotFoundException>(() => Femnist.Load(directory))!;
        Assert.That(error.Message, Does.Contain("test/*.json").And.Not.Contain("train/*.json"));

        Directory.Delete(Path.Combine(directory, "test"), recursive: true);
        error = Assert.Throws<DataNotFoundException>(() => Femnist.Load(directory))!;
        Assert.That(error.Message, Does.Contain("test/*.json"));
    }

    private static void AssertHint(DataNotFoundException error, string where)
    {
        Assert.That(error.Message, Does.Contain(where));
        Assert.That(error.Message, Does.Contain("./preprocess.sh -s niid --sf 1.0 -k 0 -t sample"));
        Assert.That(error.Message, Does.Contain("leaf/data/femnist"));
        Assert.That(error.Message, Does.Contain("--data-dir"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [Test]
    [Explicit("measures load speed on a generated file of about 20 MB")]
    public void MeasureLoadSpeed()
    {
        var sb = new StringBuilder();
        var random = new Random(7);
        int writers = 0, samples = 0;
        var names = new List<string>();
        var counts = new List<int>();
        sb.Append("{\"user_data\": {");
        while (sb.Length < 20_000_000)
        {
            string name = $"f{writers:D4}_{writers % 100:D2}";
            int count = 20 + random.Next(20);
            sb.Append(writers == 0 ? "" : ", ").Append('"').Append(name).Append("\": {\"x\": [");
            for (int s = 0; s < count; s++)
            {
                sb.Append(s == 0 ? "[" : ", [");
                for (int p = 0; p < Pixels; p++)
                {
                    // Like LEAF: mostly white 1.0, some ink strokes as k/255 doubles.
                    double value = random.Next(5) == 0 ? random.Next(256) / 255.0 : 1.0;
                    sb.Append(p == 0 ? "" : ", ").Append(value.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                }
                sb.Append(']');
            }
            sb.Append("], \"y\": [").Append(string.Join(", ", Enumerable.Range(0, count).Select(s => s % 62))).Append("]}");
            names.Add(name);
            counts.Add(count);
            writers++;
            samples += count;
        }
        sb.Append("}, \"users\": [").Append(string.Join(", ", names.Select(n => $"\"{n}\""))).Append("], \"num_samples\": [")
            .Append(string.Join(", ", counts)).Append("]}");
        string path = WriteText("train", "speed.json", sb.ToString());
        Write("test", "t.json", Leaf(true, Users((0, 1))));

        Femnist.LoadFile(path);
        var watch = Stopwatch.StartNew();
        var users = Femnist.LoadFile(path);
        double fileSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var split = Femnist.Load(directory);
        double loadSeconds = watch.Elapsed.TotalSeconds;

        Assert.That(users.Sum(u => u.SampleCount), Is.EqualTo(samples));
        Assert.That(split.Train.Count, Is.EqualTo(samples));
        TestContext.Out.WriteLine(
            $"{new FileInfo(path).Length / 1e6:F1} MB, {samples} samples of {writers} writers: LoadFile {fileSeconds:F2} s "
            + $"({samples / fileSeconds:F0} samples/s, {new FileInfo(path).Length / 1e6 / fileSeconds:F0} MB/s); "
            + $"Load {loadSeconds:F2} s ({samples / loadSeconds:F0} samples/s)");
    }
}
