namespace ZeroFL.Data;

/// <summary>
/// An immutable in-memory labelled data set on the host. <see cref="Features"/> is
/// <c>[Count, Channels, Height, Width]</c> flattened row-major and already normalised;
/// <see cref="Labels"/> is <c>[Count]</c> with values in <c>0..ClassCount-1</c>. The engine uploads
/// these arrays to the device once; nothing here writes to them after construction, and callers
/// must not either.
/// </summary>
public sealed class Dataset
{
    /// <summary>
    /// Wraps the given arrays (not copied). Throws <see cref="ArgumentException"/> when the shapes
    /// disagree or a label is out of range.
    /// </summary>
    public Dataset(string name, float[] features, int[] labels, int channels, int height, int width, int classCount)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (channels <= 0 || height <= 0 || width <= 0 || classCount <= 0)
        {
            throw new ArgumentException(
                $"{name}: invalid shape channels={channels} height={height} width={width} classes={classCount}");
        }
        long sampleSize = (long)channels * height * width;
        if (features.Length != labels.Length * sampleSize)
        {
            throw new ArgumentException(
                $"{name}: {features.Length} feature values do not make {labels.Length} samples of {channels}x{height}x{width}");
        }
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
            {
                throw new ArgumentException($"{name}: label {labels[i]} of sample {i} is outside 0..{classCount - 1}");
            }
        }
        Name = name;
        Features = features;
        Labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        ClassCount = classCount;
        SampleSize = (int)sampleSize;
    }

    /// <summary>Training-time augmentation this data set calls for (CIFAR-10: crop and flip), or null for none.</summary>
    public CropFlip? Augmentation { get; init; }

    /// <summary>A short human-readable name, e.g. "fashion-mnist/train".</summary>
    public string Name { get; }

    /// <summary>Normalised features <c>[Count, Channels, Height, Width]</c>, row-major. Read only.</summary>
    public float[] Features { get; }

    /// <summary>Class labels <c>[Count]</c>, each in <c>0..ClassCount-1</c>. Read only.</summary>
    public int[] Labels { get; }

    /// <summary>Number of samples.</summary>
    public int Count => Labels.Length;

    /// <summary>Channels per sample (1 for MNIST-like data).</summary>
    public int Channels { get; }

    /// <summary>Rows per image.</summary>
    public int Height { get; }

    /// <summary>Columns per image.</summary>
    public int Width { get; }

    /// <summary>Number of classes; labels are 0..ClassCount-1.</summary>
    public int ClassCount { get; }

    /// <summary>Feature values per sample: Channels * Height * Width.</summary>
    public int SampleSize { get; }

    /// <summary>The features of sample <paramref name="index"/>, <c>[Channels, Height, Width]</c>.</summary>
    public ReadOnlySpan<float> Sample(int index)
    {
        if ((uint)index >= (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{Name} has {Count} samples");
        }
        return Features.AsSpan(index * SampleSize, SampleSize);
    }

    /// <summary>
    /// A new data set holding copies of the samples at <paramref name="indices"/>, in that order
    /// (repeats allowed). Throws <see cref="ArgumentOutOfRangeException"/> for an index outside 0..Count-1.
    /// </summary>
    public Dataset Subset(int[] indices, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var features = new float[(long)indices.Length * SampleSize];
        var labels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            int source = indices[i];
            if ((uint)source >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), source,
                    $"index {source} at position {i} is outside {Name}'s 0..{Count - 1}");
            }
            Array.Copy(Features, (long)source * SampleSize, features, (long)i * SampleSize, SampleSize);
            labels[i] = Labels[source];
        }
        return new Dataset(name ?? $"{Name}[subset of {indices.Length}]", features, labels, Channels, Height, Width, ClassCount)
        {
            Augmentation = Augmentation,
        };
    }

    /// <summary>How many samples carry each label: <c>[ClassCount]</c>.</summary>
    public int[] LabelCounts()
    {
        var counts = new int[ClassCount];
        foreach (int label in Labels)
        {
            counts[label]++;
        }
        return counts;
    }

    /// <summary>How many of the samples at <paramref name="indices"/> carry each label: <c>[ClassCount]</c>.</summary>
    public int[] LabelCounts(ReadOnlySpan<int> indices)
    {
        var counts = new int[ClassCount];
        foreach (int index in indices)
        {
            if ((uint)index >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), index, $"{Name} has {Count} samples");
            }
            counts[Labels[index]]++;
        }
        return counts;
    }

    /// <summary>
    /// Builds a single-channel data set from raw unsigned-byte images <c>[count, height, width]</c>
    /// and byte labels, normalising every pixel with <paramref name="normalization"/>.
    /// </summary>
    public static Dataset FromBytes(string name, ReadOnlySpan<byte> pixels, ReadOnlySpan<byte> labels,
        int height, int width, int classCount, Normalization normalization)
    {
        var table = normalization.Table();
        var features = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            features[i] = table[pixels[i]];
        }
        var intLabels = new int[labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            intLabels[i] = labels[i];
        }
        return new Dataset(name, features, intLabels, 1, height, width, classCount);
    }
}
