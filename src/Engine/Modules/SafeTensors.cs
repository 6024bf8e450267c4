using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace ZeroFL.Engine.Modules;

/// <summary>One tensor of a safetensors file: its name, shape and float32 values.</summary>
/// <param name="Name">Tensor name, e.g. <c>layer1.0.conv1.weight</c>.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Values">Row-major values (product of <paramref name="Shape"/> of them).</param>
public sealed record NamedTensor(string Name, int[] Shape, float[] Values);

/// <summary>
/// The safetensors format (Hugging Face; readable by PyTorch's <c>safetensors.torch.load_file</c>):
/// an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"__metadata__": {string: string}, name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}}</c>,
/// offsets relative to the end of the header, padded with spaces to a multiple of 8), then the raw
/// little-endian tensor bytes in the order of the offsets. Only F32 tensors are written or read.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> atomically: a temporary file,
    /// flushed to disk, then renamed over the target, so a crash leaves the old file or the new one.
    /// </summary>
    public static void Write(string path, IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 })
        {
            header["__metadata__"] = metadata;
        }
        long offset = 0;
        foreach (var t in tensors)
        {
            if (t.Values.LongLength != t.Shape.Aggregate(1L, (a, d) => a * d))
            {
                throw new ArgumentException($"safetensors: tensor {t.Name} has {t.Values.Length} values for shape [{string.Join(", ", t.Shape)}]");
            }
            long end = offset + 4L * t.Values.Length;
            header[t.Name] = new Dictionary<string, object> { ["dtype"] = "F32", ["shape"] = t.Shape, ["data_offsets"] = new[] { offset, end } };
            offset = end;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        IO.AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(json);
            for (int i = json.Length; i < padded; i++)
            {
                stream.WriteByte((byte)' ');
            }
            foreach (var t in tensors)
            {
                var bytes = new byte[4 * t.Values.Length];
                for (int i = 0; i < t.Values.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), t.Values[i]);
                }
                stream.Write(bytes);
            }
        });
    }

    /// <summary>
    /// Reads every tensor of <paramref name="path"/> in file order and the metadata. Throws
    /// <see cref="InvalidDataException"/> with one line naming the file for anything malformed:
    /// a short file, a header length beyond the file, bad JSON, a dtype other than F32, offsets that
    /// overlap, leave gaps, run past the file or do not match the shape.
    /// </summary>
    public static (IReadOnlyList<NamedTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        byte[] file;
        try
        {
            file = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot be read ({e.Message})", e);
        }
        InvalidDataException Bad(string problem) => new($"{path}: not a usable safetensors file: {problem}");
        if (file.Length < 8)
        {
            throw Bad($"{file.Length} bytes, shorter than the 8-byte header length");
        }
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (headerLength > MaxHeaderBytes || (long)headerLength > file.Length - 8)
        {
            throw Bad($"header length {headerLength} does not fit in the {file.Length}-byte file");
        }
        var metadata = new Dictionary<string, string>();
        var entries = new List<(string Name, int[] Shape, long Begin, long End)>();
        try
        {
            using var document = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        metadata[m.Name] = m.Value.GetString() ?? string.Empty;
                    }
                    continue;
                }
                string dtype = property.Value.GetProperty("dtype").GetString() ?? string.Empty;
                if (dtype != "F32")
                {
                    throw Bad($"tensor {property.Name} has dtype {dtype}; only F32 is supported");
                }
                var shape = property.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
                var offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (offsets.Length != 2 || shape.Any(d => d < 0))
                {
                    throw Bad($"tensor {property.Name} has a malformed shape or data_offsets");
                }
                entries.Add((property.Name, shape, offsets[0], offsets[1]));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException or ArgumentException)
        {
            throw Bad($"header is not the expected JSON ({e.Message.ReplaceLineEndings(" ")})");
        }
        var duplicate = entries.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw Bad($"tensor {duplicate.Key} appears twice");
        }
        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;
        long expectedBegin = 0;
        var tensors = new List<NamedTensor>();
        foreach (var (name, shape, begin, end) in entries.OrderBy(e => e.Begin))
        {
            long count = shape.Aggregate(1L, (a, d) => a * d);
            if (begin != expectedBegin || end - begin != 4 * count || end > dataLength)
            {
                throw Bad($"tensor {name}: data_offsets [{begin}, {end}] do not follow on from {expectedBegin} with 4 x {count} bytes inside the {dataLength} data bytes");
            }
            var values = new float[count];
            for (long i = 0; i < count; i++)
            {
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan((int)(dataStart + begin + 4 * i), 4));
            }
            tensors.Add(new NamedTensor(name, shape, values));
            expectedBegin = end;
        }
        if (expectedBegin != dataLength)
        {
            throw Bad($"{dataLength - expectedBegin} bytes after the last tensor");
        }
        return (tensors, metadata);
    }

    /// <summary>The tensors of a store's values (<see cref="ParameterStore.Download"/>), one per parameter, named by its full name.</summary>
    public static List<NamedTensor> FromStore(ParameterStore store, float[] values) =>
        store.Parameters.Select(p => new NamedTensor(p.FullName, p.Shape, values.AsSpan((int)p.Offset, (int)p.Length).ToArray())).ToList();

    /// <summary>
    /// The store value block made from <paramref name="tensors"/>: every parameter of
    /// <paramref name="store"/> must appear once with its shape (InvalidDataException naming the first that does not).
    /// </summary>
    public static float[] ToStoreValues(ParameterStore store, IReadOnlyList<NamedTensor> tensors, string source)
    {
        var byName = tensors.ToDictionary(t => t.Name);
        var values = new float[store.TotalLength];
        foreach (var p in store.Parameters)
        {
            if (!byName.TryGetValue(p.FullName, out var t) || !t.Shape.SequenceEqual(p.Shape))
            {
                throw new InvalidDataException($"{source}: tensor {p.FullName} [{string.Join(", ", p.Shape)}] is missing or has another shape");
            }
            t.Values.CopyTo(values, p.Offset);
        }
        if (byName.Count != store.Parameters.Count)
        {
            throw new InvalidDataException($"{source}: {byName.Count} tensors for a model of {store.Parameters.Count}");
        }
        return values;
    }
}
