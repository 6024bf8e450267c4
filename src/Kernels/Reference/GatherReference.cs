namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="GatherKernels"/>.</summary>
public static class GatherReference
{
    /// <summary>destination[i, :] = source[indices[i], :].</summary>
    public static float[] GatherRows(float[] source, int rowLength, int[] indices)
    {
        var destination = new float[indices.Length * rowLength];
        for (int i = 0; i < indices.Length; i++)
        {
            Array.Copy(source, (long)indices[i] * rowLength, destination, (long)i * rowLength, rowLength);
        }
        return destination;
    }
}
