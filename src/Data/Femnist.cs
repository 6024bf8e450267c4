using System.Text.Json;

namespace ZeroFL.Data;

/// <summary>
/// The samples of one FEMNIST writer in one LEAF JSON file, as stored: <see cref="Pixels"/> is
/// <c>[SampleCount, 28, 28]</c> row-major with LEAF's values in <c>[0, 1]</c> (1 - ink, so white
/// is 1.0), not normalised; <see cref="Labels"/> is <c>[SampleCount]</c> with classes
/// <c>0..61</c>.
/// </summary>
/// <param name="Name">The writer's LEAF name, e.g. "f0000_14".</param>
/// <param name="SampleCount">Number of samples; equals the file's <c>num_samples</c> entry.</param>
/// <param name="Pixels">Raw pixel values <c>[SampleCount * 784]</c>.</param>
/// <param name="Labels">Class labels <c>[SampleCount]</c>.</param>
public sealed record FemnistUser(string Name, int SampleCount, float[] Pixels, int[] Labels);

/// <summary>A FEMNIST train/test split together with the writer names behind its group ids.</summary>
/// <param name="Split">
/// The data; <see cref="TrainTestSplit.TrainGroups"/> holds each training sample's writer index.
/// </param>
/// <param name="Writers">Writer names by writer index (first-appearance order over the train files).</param>
public sealed record FemnistSplit(TrainTestSplit Split, IReadOnlyList<string> Writers);

/// <summary>
/// FEMNIST from LEAF: 28x28 handwritten characters of 62 classes (digits 0-9, then upper-case A-Z,
/// then lower-case a-z) grouped by writer. Reads the JSON files LEAF's preprocessing writes into
/// <c>train/</c> and <c>test/</c>, streaming each file with <see cref="Utf8JsonReader"/> over a
/// reusable byte buffer, so a file is never held in memory as text.
/// </summary>
public static class Femnist
{
    /// <summary>Number of classes: 10 digits, 26 upper-case and 26 lower-case letters.</summary>
    public const int Classes = 62;

    /// <summary>Rows and columns of each image.</summary>
    public const int ImageSide = 28;

    /// <summary>Pixel values per sample (28 * 28).</summary>
    public const int PixelsPerImage = ImageSide * ImageSide;

    /// <summary>Initial size in bytes of the buffer a JSON file is streamed through.</summary>
    public const int DefaultBufferSize = 1 << 20;

    /// <summary>The largest a single JSON token may make the stream buffer grow to.</summary>
    public const int MaxBufferSize = 64 << 20;

    /// <summary>How to get the data, ending a one-line not-found message.</summary>
    public const string InstallHint =
        "get it with LEAF: in leaf/data/femnist run './preprocess.sh -s niid --sf 1.0 -k 0 -t sample', "
        + "then pass --data-dir pointing at the folder holding train/ and test/ (leaf/data/femnist/data)";

    /// <summary>
    /// Loads FEMNIST from <paramref name="dataDir"/>, the folder holding <c>train/*.json</c> and
    /// <c>test/*.json</c>; see <see cref="LoadWithWriters"/> for the layout of the result.
    /// </summary>
    public static TrainTestSplit Load(string? dataDir, int? maxWriters = null) =>
        LoadWithWriters(dataDir, maxWriters).Split;

    /// <summary>
    /// Loads FEMNIST from <paramref name="dataDir"/>, the folder holding <c>train/*.json</c> and
    /// <c>test/*.json</c>. Files are read in ordinal order of their names and users in the order of
    /// each file's <c>users</c> list. Training samples are all samples of all train files; writers
    /// are numbered 0.. in order of first appearance over the train files and
    /// <see cref="TrainTestSplit.TrainGroups"/> holds each training sample's writer index. The test
    /// set is all samples of all test files. Features are <c>[N, 1, 28, 28]</c>, normalised as
    /// <c>(x - 0.5) / 0.5</c> (so LEAF's white 1.0 becomes 1 and full ink 0.0 becomes -1; the
    /// polarity is kept); labels are <c>0..61</c>.
    /// <para>
    /// With <paramref name="maxWriters"/> only the first N writers are kept, in training and test
    /// (test samples of other writers are dropped); train files after the one in which the Nth
    /// writer appears are not read, since LEAF keeps each writer's training samples in one file.
    /// </para>
    /// Throws <see cref="DataNotFoundException"/> when the directory or its JSON files are missing
    /// and <see cref="DataFormatException"/>, naming the file, when one is unusable.
    /// </summary>
    public static FemnistSplit LoadWithWriters(string? dataDir, int? maxWriters = null)
    {
        if (maxWriters is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxWriters), maxWriters, "must be positive");
        }
        var (trainFiles, testFiles) = FindFiles(dataDir);

        var writerIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var writers = new List<string>();
        var train = new List<(int Writer, FemnistUser User)>();
        foreach (string file in trainFiles)
        {
            foreach (var user in LoadFile(file))
            {
                if (!writerIndex.TryGetValue(user.Name, out int writer))
                {
                    if (writers.Count == maxWriters)
                    {
                        continue;
                    }
                    writer = writers.Count;
                    writerIndex.Add(user.Name, writer);
                    writers.Add(user.Name);
                }
                train.Add((writer, user));
            }
            if (writers.Count == maxWriters)
            {
                break;
            }
        }

        var test = new List<(int Writer, FemnistUser User)>();
        foreach (string file in testFiles)
        {
            foreach (var user in LoadFile(file))
            {
                if (maxWriters is null || writerIndex.ContainsKey(user.Name))
                {
                    test.Add((-1, user));
                }
            }
        }

        var (trainSet, groups) = Build("femnist/train", train);
        var (testSet, _) = Build("femnist/test", test);
        return new FemnistSplit(new TrainTestSplit(trainSet, testSet, groups), writers);
    }

    /// <summary>
    /// The train and test JSON files in <paramref name="dataDir"/> (<c>train/*.json</c> and
    /// <c>test/*.json</c>, each in ordinal order of file name), or throws
    /// <see cref="DataNotFoundException"/> with one line saying where it looked and how to get the data.
    /// </summary>
    public static (string[] Train, string[] Test) FindFiles(string? dataDir)
    {
        if (string.IsNullOrWhiteSpace(dataDir))
        {
            throw new DataNotFoundException($"FEMNIST: no data directory given; {InstallHint}");
        }
        if (!Directory.Exists(dataDir))
        {
            throw new DataNotFoundException(
                $"FEMNIST not found: directory {dataDir} does not exist; {InstallHint}", dataDir);
        }
        string[] trainFiles = JsonFiles(Path.Combine(dataDir, "train"));
        string[] testFiles = JsonFiles(Path.Combine(dataDir, "test"));
        var missing = new List<string>();
        if (trainFiles.Length == 0)
        {
            missing.Add("train/*.json");
        }
        if (testFiles.Length == 0)
        {
            missing.Add("test/*.json");
        }
        if (missing.Count > 0)
        {
            throw new DataNotFoundException(
                $"FEMNIST not found in {dataDir}: no {string.Join(" and no ", missing)}; {InstallHint}", dataDir);
        }
        return (trainFiles, testFiles);
    }

    /// <summary>
    /// Reads one LEAF JSON file, streaming it through a buffer of <paramref name="bufferSize"/> bytes
    /// (grown only for a single token longer than that), and returns its users in the order of its
    /// <c>users</c> list. Keys may come in any order; keys other than <c>users</c>,
    /// <c>num_samples</c> and <c>user_data</c> (such as <c>hierarchies</c>) are skipped. Throws
    /// <see cref="DataFormatException"/> naming the file for anything unusable: not JSON or truncated,
    /// a missing key, a user listed without data or with data but not listed, a count that disagrees
    /// with <c>num_samples</c>, an image row not of 784 values in [0, 1], or a label outside 0..61.
    /// </summary>
    public static IReadOnlyList<FemnistUser> LoadFile(string path, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        using var stream = Open(path);
        try
        {
            return new FileParser(path, stream, Math.Min(bufferSize, MaxBufferSize)).Parse();
        }
        catch (JsonException e)
        {
            throw new DataFormatException(path, $"not valid JSON ({DataFiles.OneLine(e.Message)})", e);
        }
        catch (InvalidOperationException e)
        {
            throw new DataFormatException(path, $"not valid JSON ({DataFiles.OneLine(e.Message)})", e);
        }
        catch (IOException e)
        {
            throw new DataFormatException(path, $"read error ({DataFiles.OneLine(e.Message)})", e);
        }
    }

    private static string[] JsonFiles(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }
        var files = Directory.GetFiles(directory)
            .Where(f => string.Equals(Path.GetExtension(f), ".json", StringComparison.OrdinalIgnoreCase))
            .ToArray();
        Array.Sort(files, (a, b) => string.CompareOrdinal(Path.GetFileName(a), Path.GetFileName(b)));
        return files;
    }

    private static FileStream Open(string path)
        => DataFiles.OpenRead(path, "a JSON file", 1, FileOptions.SequentialScan);

    private static (Dataset Data, int[] Groups) Build(string name, List<(int Writer, FemnistUser User)> users)
    {
        long total = 0;
        foreach (var (_, user) in users)
        {
            total += user.SampleCount;
        }
        if (total * PixelsPerImage > Array.MaxLength)
        {
            throw new ArgumentException($"{name}: {total} samples do not fit in one array; use maxWriters");
        }
        var features = new float[total * PixelsPerImage];
        var labels = new int[total];
        var groups = new int[total];
        int sample = 0;
        foreach (var (writer, user) in users)
        {
            var target = features.AsSpan(sample * PixelsPerImage, user.Pixels.Length);
            for (int i = 0; i < target.Length; i++)
            {
                target[i] = (user.Pixels[i] - 0.5f) / 0.5f;
            }
            user.Labels.CopyTo(labels, sample);
            groups.AsSpan(sample, user.SampleCount).Fill(writer);
            sample += user.SampleCount;
        }
        return (new Dataset(name, features, labels, 1, ImageSide, ImageSide, Classes), groups);
    }


    /// <summary>Parses one LEAF file with a <see cref="Utf8JsonReader"/> that is refilled chunk by chunk.</summary>
    private sealed class FileParser(string path, Stream stream, int bufferSize)
    {
        private byte[] buffer = new byte[bufferSize];
        private int length;
        private bool isFinalBlock;
        private float[] pixelScratch = new float[16 * PixelsPerImage];
        private readonly List<int> labelScratch = [];

        public IReadOnlyList<FemnistUser> Parse()
        {
            Fill();
            var reader = new Utf8JsonReader(buffer.AsSpan(0, length), isFinalBlock, default);
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartObject, "the top level");

            List<string>? users = null;
            List<int>? counts = null;
            Dictionary<string, FemnistUser>? data = null;
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }
                if (reader.ValueTextEquals("users"u8))
                {
                    Once(users, "users");
                    users = ReadUsers(ref reader);
                }
                else if (reader.ValueTextEquals("num_samples"u8))
                {
                    Once(counts, "num_samples");
                    counts = ReadCounts(ref reader);
                }
                else if (reader.ValueTextEquals("user_data"u8))
                {
                    Once(data, "user_data");
                    data = ReadUserData(ref reader);
                }
                else
                {
                    Advance(ref reader);
                    Skip(ref reader);
                }
            }
            if (Next(ref reader))
            {
                throw Error($"unexpected {reader.TokenType} after the top-level object");
            }

            if (users is null)
            {
                throw Error("no \"users\" key");
            }
            if (counts is null)
            {
                throw Error("no \"num_samples\" key");
            }
            if (data is null)
            {
                throw Error("no \"user_data\" key");
            }
            if (counts.Count != users.Count)
            {
                throw Error($"num_samples has {counts.Count} entries but users has {users.Count}");
            }
            var result = new FemnistUser[users.Count];
            for (int i = 0; i < users.Count; i++)
            {
                if (!data.Remove(users[i], out var user))
                {
                    throw Error($"user {users[i]} is listed in users but has no user_data");
                }
                if (user.SampleCount != counts[i])
                {
                    throw Error($"user {users[i]}: num_samples[{i}] is {counts[i]} but x has {user.SampleCount} rows");
                }
                if (user.Labels.Length != counts[i])
                {
                    throw Error($"user {users[i]}: num_samples[{i}] is {counts[i]} but y has {user.Labels.Length} entries");
                }
                result[i] = user;
            }
            if (data.Count > 0)
            {
                throw Error($"user {data.Keys.First()} has user_data but is not listed in users");
            }
            return result;
        }

        private List<string> ReadUsers(ref Utf8JsonReader reader)
        {
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartArray, "users");
            var users = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    return users;
                }
                Expect(ref reader, JsonTokenType.String, $"users[{users.Count}]");
                string name = reader.GetString()!;
                if (!seen.Add(name))
                {
                    throw Error($"user {name} is listed twice in users");
                }
                users.Add(name);
            }
        }

        private List<int> ReadCounts(ref Utf8JsonReader reader)
        {
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartArray, "num_samples");
            var counts = new List<int>();
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    return counts;
                }
                Expect(ref reader, JsonTokenType.Number, $"num_samples[{counts.Count}]");
                if (!reader.TryGetInt32(out int count) || count < 0)
                {
                    throw Error($"num_samples[{counts.Count}] is not a non-negative integer");
                }
                counts.Add(count);
            }
        }

        private Dictionary<string, FemnistUser> ReadUserData(ref Utf8JsonReader reader)
        {
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartObject, "user_data");
            var data = new Dictionary<string, FemnistUser>(StringComparer.Ordinal);
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    return data;
                }
                string name = reader.GetString()!;
                if (data.ContainsKey(name))
                {
                    throw Error($"user {name} appears twice in user_data");
                }
                data.Add(name, ReadUser(ref reader, name));
            }
        }

        private FemnistUser ReadUser(ref Utf8JsonReader reader, string name)
        {
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartObject, $"user_data of user {name}");
            float[]? pixels = null;
            int[]? labels = null;
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }
                if (reader.ValueTextEquals("x"u8))
                {
                    if (pixels is not null)
                    {
                        throw Error($"user {name}: duplicate key \"x\"");
                    }
                    pixels = ReadImages(ref reader, name);
                }
                else if (reader.ValueTextEquals("y"u8))
                {
                    if (labels is not null)
                    {
                        throw Error($"user {name}: duplicate key \"y\"");
                    }
                    labels = ReadLabels(ref reader, name);
                }
                else
                {
                    Advance(ref reader);
                    Skip(ref reader);
                }
            }
            if (pixels is null)
            {
                throw Error($"user {name}: user_data has no \"x\"");
            }
            if (labels is null)
            {
                throw Error($"user {name}: user_data has no \"y\"");
            }
            // Counts are checked against num_samples once the whole file is read.
            return new FemnistUser(name, pixels.Length / PixelsPerImage, pixels, labels);
        }

        private float[] ReadImages(ref Utf8JsonReader reader, string name)
        {
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartArray, $"x of user {name}");
            int count = 0;
            int rows = 0;
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    return pixelScratch.AsSpan(0, count).ToArray();
                }
                Expect(ref reader, JsonTokenType.StartArray, $"x row {rows} of user {name}");
                if (pixelScratch.Length - count < PixelsPerImage)
                {
                    Array.Resize(ref pixelScratch, pixelScratch.Length * 2);
                }
                var row = pixelScratch.AsSpan(count, PixelsPerImage);
                int values = 0;
                while (true)
                {
                    Advance(ref reader);
                    if (reader.TokenType == JsonTokenType.EndArray)
                    {
                        break;
                    }
                    Expect(ref reader, JsonTokenType.Number, $"a pixel in x row {rows} of user {name}");
                    if (values == PixelsPerImage)
                    {
                        throw Error($"user {name}: x row {rows} has more than {PixelsPerImage} values");
                    }
                    // LEAF images are mostly white; "1.0" skips the general number parser.
                    float value = 1f;
                    if (!reader.ValueSpan.SequenceEqual("1.0"u8)
                        && (!reader.TryGetSingle(out value) || !(value >= 0f && value <= 1f)))
                    {
                        throw Error($"user {name}: x row {rows} value {values} is not a number in [0, 1]");
                    }
                    row[values++] = value;
                }
                if (values != PixelsPerImage)
                {
                    throw Error($"user {name}: x row {rows} has {values} values, expected {PixelsPerImage}");
                }
                count += PixelsPerImage;
                rows++;
            }
        }

        private int[] ReadLabels(ref Utf8JsonReader reader, string name)
        {
            Advance(ref reader);
            Expect(ref reader, JsonTokenType.StartArray, $"y of user {name}");
            labelScratch.Clear();
            while (true)
            {
                Advance(ref reader);
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    return [.. labelScratch];
                }
                Expect(ref reader, JsonTokenType.Number, $"y[{labelScratch.Count}] of user {name}");
                if (!reader.TryGetInt32(out int label) || (uint)label >= Classes)
                {
                    throw Error($"user {name}: y[{labelScratch.Count}] is not a class in 0..{Classes - 1}");
                }
                labelScratch.Add(label);
            }
        }

        private void Skip(ref Utf8JsonReader reader)
        {
            if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
            {
                return;
            }
            int depth = reader.CurrentDepth;
            do
            {
                Advance(ref reader);
            }
            while (!(reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray && reader.CurrentDepth == depth));
        }

        private void Once(object? previous, string key)
        {
            if (previous is not null)
            {
                throw Error($"duplicate key \"{key}\"");
            }
        }

        private void Expect(ref Utf8JsonReader reader, JsonTokenType type, string what)
        {
            if (reader.TokenType != type)
            {
                throw Error($"expected {Describe(type)} for {what}, found {Describe(reader.TokenType)}");
            }
        }

        private static string Describe(JsonTokenType type) => type switch
        {
            JsonTokenType.StartObject => "an object",
            JsonTokenType.EndObject => "the end of an object",
            JsonTokenType.StartArray => "an array",
            JsonTokenType.EndArray => "the end of an array",
            JsonTokenType.String => "a string",
            JsonTokenType.Number => "a number",
            JsonTokenType.PropertyName => "a key",
            _ => type.ToString(),
        };

        /// <summary>The next token, or a "truncated" error at the end of the file.</summary>
        private void Advance(ref Utf8JsonReader reader)
        {
            if (!Next(ref reader))
            {
                throw Error("truncated JSON (the file ends inside the top-level object)");
            }
        }

        /// <summary>Reads the next token, refilling the buffer as needed; false at the end of the file.</summary>
        private bool Next(ref Utf8JsonReader reader)
        {
            while (!reader.Read())
            {
                if (isFinalBlock)
                {
                    return false;
                }
                Refill(ref reader);
            }
            return true;
        }

        /// <summary>
        /// Keeps the bytes the reader has not consumed (a partial token), moves them to the front,
        /// reads more after them and restarts the reader from its saved state.
        /// </summary>
        private void Refill(ref Utf8JsonReader reader)
        {
            int consumed = (int)reader.BytesConsumed;
            int left = length - consumed;
            if (left == buffer.Length)
            {
                if (buffer.Length >= MaxBufferSize)
                {
                    throw Error($"a single JSON token is longer than {MaxBufferSize} bytes");
                }
                var larger = new byte[Math.Min((long)buffer.Length * 2, MaxBufferSize)];
                buffer.AsSpan(consumed, left).CopyTo(larger);
                buffer = larger;
            }
            else
            {
                buffer.AsSpan(consumed, left).CopyTo(buffer);
            }
            length = left;
            Fill();
            reader = new Utf8JsonReader(buffer.AsSpan(0, length), isFinalBlock, reader.CurrentState);
        }

        private void Fill()
        {
            while (length < buffer.Length)
            {
                int read = stream.Read(buffer, length, buffer.Length - length);
                if (read == 0)
                {
                    isFinalBlock = true;
                    return;
                }
                length += read;
            }
        }

        private DataFormatException Error(string problem) => new(path, problem);
    }
}
