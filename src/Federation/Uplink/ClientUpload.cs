namespace ZeroFL.Federation.Uplink;

/// <summary>
/// What a client sends for one layer: either every entry in order (<see cref="IsWhole"/>:
/// <see cref="Values"/> is <c>[Layer.Length]</c>, <see cref="Positions"/> empty) or a slice
/// (<see cref="Positions"/>: flat row-major positions, ascending; <see cref="Values"/> the values
/// there). Values are weights or differences w_E - w_t, as <see cref="ClientUpload.Strategy"/> says.
/// </summary>
public sealed class LayerUpload
{
    private readonly int[] positions;
    private readonly float[] values;

    /// <summary>A layer sent whole (values copied).</summary>
    public static LayerUpload Whole(LayerSpec layer, ReadOnlySpan<float> values)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (values.Length != layer.Length)
        {
            throw new ArgumentException($"layer {layer.Name}: {values.Length} values, expected {layer.Length}");
        }
        return new LayerUpload(layer, [], values.ToArray());
    }

    /// <summary>
    /// A slice: values at strictly ascending flat <paramref name="positions"/> (both copied). A slice
    /// of every position is stored as <see cref="Whole"/>.
    /// </summary>
    public static LayerUpload Slice(LayerSpec layer, ReadOnlySpan<int> positions, ReadOnlySpan<float> values)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (positions.Length != values.Length)
        {
            throw new ArgumentException($"layer {layer.Name}: {positions.Length} positions for {values.Length} values");
        }
        for (int j = 0; j < positions.Length; j++)
        {
            if ((uint)positions[j] >= (uint)layer.Length || (j > 0 && positions[j] <= positions[j - 1]))
            {
                throw new ArgumentException($"layer {layer.Name}: position {positions[j]} at {j} is out of range or not ascending");
            }
        }
        return positions.Length == layer.Length
            ? new LayerUpload(layer, [], values.ToArray())
            : new LayerUpload(layer, positions.ToArray(), values.ToArray());
    }

    private LayerUpload(LayerSpec layer, int[] positions, float[] values)
    {
        Layer = layer;
        this.positions = positions;
        this.values = values;
    }

    /// <summary>The layer.</summary>
    public LayerSpec Layer { get; }

    /// <summary>True when every entry is sent, in order, without positions (4 B per entry on the wire).</summary>
    public bool IsWhole => values.Length == Layer.Length;

    /// <summary>Flat positions of a slice, ascending; empty when <see cref="IsWhole"/>.</summary>
    public ReadOnlySpan<int> Positions => positions;

    /// <summary>The sent values: <c>[Layer.Length]</c> when whole, else one per position.</summary>
    public ReadOnlySpan<float> Values => values;

    /// <summary>Entries sent.</summary>
    public int SentCount => values.Length;

    /// <summary>Bytes on the wire (<see cref="UplinkBytes.Layer"/>).</summary>
    public long Bytes => UplinkBytes.Layer(Layer, SentCount);

    /// <summary>The layer as a dense array: the sent values, zero where nothing was sent.</summary>
    public float[] ToDense()
    {
        if (IsWhole)
        {
            return (float[])values.Clone();
        }
        var dense = new float[Layer.Length];
        for (int j = 0; j < positions.Length; j++)
        {
            dense[positions[j]] = values[j];
        }
        return dense;
    }

    /// <summary>The upload as CSR over the layer's 2-D view (a whole layer gives every entry).</summary>
    public CsrMatrix ToCsr() => IsWhole
        ? CsrMatrix.FromSorted(Layer, Enumerable.Range(0, Layer.Length).ToArray(), values)
        : CsrMatrix.FromSorted(Layer, positions, values);

    /// <summary>Adds weight * (sent value) into <paramref name="sum"/> at the sent positions and marks them in <paramref name="sent"/>.</summary>
    internal void AccumulateInto(Span<double> sum, Span<bool> sent, double weight)
    {
        if (IsWhole)
        {
            for (int i = 0; i < values.Length; i++)
            {
                sum[i] += weight * values[i];
            }
            sent.Fill(true);
            return;
        }
        for (int j = 0; j < positions.Length; j++)
        {
            sum[positions[j]] += weight * values[j];
            sent[positions[j]] = true;
        }
    }
}

/// <summary>A client's upload after local training: per-layer values, its example count and the strategy that produced it.</summary>
public sealed class ClientUpload
{
    /// <summary>Bundles an upload; <paramref name="exampleCount"/> (n_k, the client's training examples) must not be negative.</summary>
    public ClientUpload(UplinkStrategy strategy, long exampleCount, IEnumerable<LayerUpload> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (exampleCount < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(exampleCount), exampleCount, "example count must not be negative");
        }
        Strategy = strategy;
        ExampleCount = exampleCount;
        Layers = layers.ToArray();
    }

    /// <summary>The strategy; with <see cref="UplinkStrategies.SendsDifferences"/> the values are w_E - w_t.</summary>
    public UplinkStrategy Strategy { get; }

    /// <summary>n_k: the client's training examples, its FedAvg weight.</summary>
    public long ExampleCount { get; }

    /// <summary>One entry per layer of the layout, in order.</summary>
    public IReadOnlyList<LayerUpload> Layers { get; }

    /// <summary>Bytes on the wire (<see cref="UplinkBytes.Of(ClientUpload)"/>).</summary>
    public long Bytes => UplinkBytes.Of(this);
}
