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

    /// <summary>destination[p, i, j] = source[p, i * stride, j * stride] over planes of [height, width].</summary>
    public static float[] Subsample(float[] source, int planes, int height, int width, int stride)
    {
        int outHeight = (height - 1) / stride + 1, outWidth = (width - 1) / stride + 1;
        var destination = new float[planes * outHeight * outWidth];
        for (int p = 0; p < planes; p++)
        {
            for (int i = 0; i < outHeight; i++)
            {
                for (int j = 0; j < outWidth; j++)
                {
                    destination[(p * outHeight + i) * outWidth + j] = source[(p * height + i * stride) * width + j * stride];
                }
            }
        }
        return destination;
    }
}
