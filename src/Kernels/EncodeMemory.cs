using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// Device memory that a family-level encode (<see cref="CsrKernels.EncodeTopK"/>,
/// <see cref="TopKKernels.CompressTopK"/>) draws from: views it keeps for the caller (the encoded
/// result, valid as long as the caller's step) and reusable views, valid only until the next call
/// of the same kind. The encode decides what it needs: the CPU engine stages a one-pass selection,
/// a GPU backend plans on the device and asks for no staging.
/// </summary>
public interface IEncodeMemory
{
    /// <summary>Ints the caller keeps (row pointers, columns).</summary>
    ArrayView<int> KeepInts(long length);

    /// <summary>Floats the caller keeps (values).</summary>
    ArrayView<float> KeepFloats(long length);

    /// <summary>Reusable ints of a one-pass selection's staging.</summary>
    ArrayView<int> StagingIndices(long length);

    /// <summary>Reusable floats of a one-pass selection's staging.</summary>
    ArrayView<float> StagingValues(long length);

    /// <summary>Reusable ints for the full indices of a compress, valid until the caller's next use of them.</summary>
    ArrayView<int> Indices(long length);
}

/// <summary>A CSR matrix on the device: <see cref="RowPointers"/> [rows + 1], <see cref="Count"/> columns and values.</summary>
public readonly record struct CsrMatrix(ArrayView<int> RowPointers, ArrayView<int> Columns, ArrayView<float> Values, int Count);

/// <summary>The kept entries of a compress: <see cref="Count"/> values and their flat indices, increasing.</summary>
public readonly record struct CompressedEntries(ArrayView<float> Values, ArrayView<int> Indices, int Count);
