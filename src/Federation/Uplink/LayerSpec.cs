namespace ZeroFL.Federation.Uplink;

/// <summary>
/// One model tensor as the uplink sees it: name, shape, whether it is a sparse (SWAT) layer, and
/// its 2-D view for CSR: a tensor of rank &gt;= 2 is <c>[Shape[0], product of the rest]</c>
/// (conv weight <c>[out, in, kh, kw]</c> gives rows = out, columns = in * kh * kw; linear
/// <c>[out, in]</c> gives rows = out); a 1-D tensor <c>[n]</c> (or a scalar) is one row.
/// Values are flattened row-major, so flat index i is row i / Columns, column i % Columns.
/// </summary>
public sealed class LayerSpec
{
    private readonly int[] shape;

    /// <summary>Declares a layer; every dimension must be positive and the element count fit in an int.</summary>
    public LayerSpec(string name, ReadOnlySpan<int> shape, bool sparse)
    {
        ArgumentNullException.ThrowIfNull(name);
        long length = 1;
        foreach (int d in shape)
        {
            if (d <= 0)
            {
                throw new ArgumentException($"layer {name}: dimension {d} in [{string.Join(", ", shape.ToArray())}] is not positive");
            }
            length *= d;
            if (length > int.MaxValue)
            {
                throw new ArgumentException($"layer {name}: more than {int.MaxValue} elements");
            }
        }
        Name = name;
        this.shape = shape.ToArray();
        Sparse = sparse;
        Length = (int)length;
        Rows = shape.Length >= 2 ? shape[0] : 1;
        Columns = Length / Rows;
    }

    /// <summary>Parameter name (e.g. "layer1.0.conv1.weight").</summary>
    public string Name { get; }

    /// <summary>Dimensions.</summary>
    public IReadOnlyList<int> Shape => shape;

    /// <summary>True for a SWAT-sparse layer (uploaded as a top-K slice by the ZeroFL strategies); false for layers always sent whole.</summary>
    public bool Sparse { get; }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Rows of the 2-D view.</summary>
    public int Rows { get; }

    /// <summary>Columns of the 2-D view.</summary>
    public int Columns { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} [{string.Join(", ", shape)}]{(Sparse ? " sparse" : "")}";
}
