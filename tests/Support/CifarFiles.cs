namespace ZeroFL.Tests.Support;

/// <summary>CIFAR-10 binary batches for runs that need the format, not real images.</summary>
public static class CifarFiles
{
    /// <summary>
    /// Writes data_batch_1..5.bin (<paramref name="trainPerBatch"/> records each) and
    /// test_batch.bin (<paramref name="test"/> records) into <paramref name="directory"/>: 3073-byte
    /// records of random pixels from <paramref name="seed"/>, record r labelled r mod 10.
    /// </summary>
    public static void Write(string directory, int trainPerBatch, int test, int seed)
    {
        var random = new Random(seed);
        byte[] Batch(int records)
        {
            var bytes = new byte[records * 3073];
            random.NextBytes(bytes);
            for (int r = 0; r < records; r++)
            {
                bytes[r * 3073] = (byte)(r % 10);
            }
            return bytes;
        }
        for (int b = 1; b <= 5; b++)
        {
            File.WriteAllBytes(Path.Combine(directory, $"data_batch_{b}.bin"), Batch(trainPerBatch));
        }
        File.WriteAllBytes(Path.Combine(directory, "test_batch.bin"), Batch(test));
    }
}
