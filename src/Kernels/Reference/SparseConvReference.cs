namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Reference for <see cref="SparseConvKernels"/>: the truth is the dense convolution
/// (<see cref="ConvReference"/>) applied to the densified tensors: the CSR weights decoded into
/// [Cout, Cin, KH, KW] and the kept activations scattered into a zero x.
/// </summary>
public static class SparseConvReference
{
    /// <summary>y = conv(x, W_sparse).</summary>
    public static float[] Forward(ConvGeometry g, float[] x, int[] rowPointers, int[] columns, float[] values)
        => ConvReference.Forward(g, x, DenseWeights(g, rowPointers, columns, values));

    /// <summary>dx += dL/dx with the sparse weights.</summary>
    public static void BackwardInput(ConvGeometry g, float[] dy, int[] rowPointers, int[] columns, float[] values, float[] dx)
        => ConvReference.BackwardInput(g, dy, DenseWeights(g, rowPointers, columns, values), dx);

    /// <summary>dw += dL/dw with x given by its kept entries (values at flat NCHW indices).</summary>
    public static void BackwardWeight(ConvGeometry g, float[] dy, float[] xValues, int[] xIndices, float[] dw)
        => ConvReference.BackwardWeight(g, dy, DenseActivations(g, xValues, xIndices), dw);

    /// <summary>The weight tensor [Cout, Cin, KH, KW] of a CSR matrix [Cout, Cin * KH * KW].</summary>
    public static float[] DenseWeights(ConvGeometry g, int[] rowPointers, int[] columns, float[] values)
        => CsrReference.Decode(rowPointers, columns, values, g.OutChannels, g.GemmK);

    /// <summary>x [B, Cin, H, W] with the kept entries, zeros elsewhere.</summary>
    public static float[] DenseActivations(ConvGeometry g, float[] xValues, int[] xIndices)
    {
        var x = new float[g.InputLength];
        for (int i = 0; i < xIndices.Length; i++)
        {
            x[xIndices[i]] = xValues[i];
        }
        return x;
    }
}
